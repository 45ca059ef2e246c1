"""Deploys what infra/template.yaml defines into the local stack, reading every name, property,
substitution and trigger from the template itself (one source of truth):

  DataBucket        -> LocalStack S3: encryption, public access block, EventBridge notifications,
                       lifecycle, and the TLS-only bucket policy
  ScoreTable        -> moto DynamoDB (LocalStack's DynamoDB needs a download): key schema, billing
  StateMachineLogGroup -> LocalStack CloudWatch Logs
  PipelineStateMachine -> LocalStack Step Functions: statemachines/pipeline.asl.json with its
                       DefinitionSubstitutions resolved, logging, an execution role allowed to invoke
                       exactly the template's functions; its Events: the EventBridgeRule (raw/ uploads)
                       and the Schedule (retraining), as EventBridge rules targeting the state machine
  AWS::Serverless::Function -> not deployable offline; written to functions.json (name, ARN, binary,
                       environment, timeout, memory) for lambda_service.py, which runs the real binaries

Parameters take the template's defaults, overridden like `sam deploy --parameter-overrides K=V`.
Prints the stack outputs as shell assignments (MARQUEE_BUCKET=..., ...).
"""

import argparse
import json
import os
import platform
import re
import sys

import boto3
import yaml

ACCOUNT = "000000000000"


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    name = {"Ref": "Ref", "Condition": "Condition"}.get(suffix, f"Fn::{suffix}")
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


class Stack:
    def __init__(self, template_path, stack_name, region, overrides, lambda_dir):
        with open(template_path) as f:
            self.template = yaml.load(f, Loader=CfnLoader)
        self.dir = os.path.dirname(os.path.abspath(template_path))
        self.name, self.region, self.lambda_dir = stack_name, region, lambda_dir
        params = self.template.get("Parameters", {})
        unknown = set(overrides) - set(params)
        if unknown:
            sys.exit(f"deploy.py: unknown parameter(s) {sorted(unknown)}; the template has {sorted(params)}")
        self.params = {k: str(overrides.get(k, p.get("Default", ""))) for k, p in params.items()}
        self.resources = self.template["Resources"]

    def of_type(self, kind):
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    def the(self, kind):
        found = self.of_type(kind)
        if len(found) != 1:
            sys.exit(f"deploy.py: expected one {kind} in the template, found {sorted(found)}")
        return next(iter(found.items()))

    # Physical names: what CloudFormation would generate, made stable for a local stack.
    def physical(self, logical):
        kind = self.resources[logical]["Type"]
        if kind == "AWS::Serverless::Function":
            return f"{self.name}-{self.resources[logical]['Metadata']['BuildProperties']['Binary']}"
        if kind == "AWS::Logs::LogGroup":
            return self.resolve(self.resources[logical]["Properties"]["LogGroupName"])
        return f"{self.name}-{logical}".lower()

    def ref(self, logical):
        pseudo = {"AWS::StackName": self.name, "AWS::Region": self.region, "AWS::AccountId": ACCOUNT,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        if logical in pseudo:
            return pseudo[logical]
        if logical in self.params:
            return self.params[logical]
        kind = self.resources[logical]["Type"]
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return self.get_att(logical, "Arn")
        return self.physical(logical)

    def get_att(self, logical, attr):
        kind, name = self.resources[logical]["Type"], self.physical(logical)
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{name}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{name}:*",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{self.region}:{ACCOUNT}:stateMachine:{name}",
        }
        if attr != "Arn" or kind not in arns:
            sys.exit(f"deploy.py: !GetAtt {logical}.{attr} ({kind}) is not supported locally")
        return arns[kind]

    def resolve(self, v):
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Fn::GetAtt":
                return self.get_att(*arg)
            if k == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

                def sub(m):
                    token = m.group(1)
                    if token in extra:
                        return str(extra[token])
                    if "." in token:
                        return self.get_att(*token.split(".", 1))
                    return str(self.ref(token))

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {k: self.resolve(x) for k, x in v.items()}


def runs_here(path):
    """Whether an ELF executable is for this machine (x86_64 or aarch64); scripts pass."""
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return True
    machine = int.from_bytes(head[18:20], "little")
    return {0x3E: "x86_64", 0xB7: "aarch64"}.get(machine) == platform.machine()


def clients(endpoint, dynamodb_endpoint, region):
    kw = dict(region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
    c = {s: boto3.client(s, endpoint_url=endpoint, **kw) for s in ("s3", "stepfunctions", "events", "iam", "logs")}
    c["dynamodb"] = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, **kw)
    return c


def deploy_bucket(stack, c):
    logical, res = stack.the("AWS::S3::Bucket")
    props = stack.resolve(res.get("Properties", {}))
    bucket = stack.physical(logical)
    c["s3"].create_bucket(Bucket=bucket)
    if "BucketEncryption" in props:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        rules = [{("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                  for k, v in rule.items()}
                 for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
        c["s3"].put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        c["s3"].put_public_access_block(Bucket=bucket,
                                        PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in props:
        c["s3"].put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=props["OwnershipControls"])
    if "LifecycleConfiguration" in props:
        rules = []
        for r in props["LifecycleConfiguration"]["Rules"]:
            rule = {"ID": r["Id"], "Status": r["Status"], "Filter": {"Prefix": r.get("Prefix", "")}}
            if "AbortIncompleteMultipartUpload" in r:
                rule["AbortIncompleteMultipartUpload"] = r["AbortIncompleteMultipartUpload"]
            rules.append(rule)
        c["s3"].put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    notif = props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {})
    if notif.get("EventBridgeEnabled"):
        c["s3"].put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    for _, policy in stack.of_type("AWS::S3::BucketPolicy").items():
        p = stack.resolve(policy["Properties"])
        c["s3"].put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(p["PolicyDocument"]))
    return bucket


def deploy_table(stack, c):
    logical, res = stack.the("AWS::DynamoDB::Table")
    props = stack.resolve(res["Properties"])
    table = stack.physical(logical)
    c["dynamodb"].create_table(TableName=table, AttributeDefinitions=props["AttributeDefinitions"],
                               KeySchema=props["KeySchema"], BillingMode=props.get("BillingMode", "PROVISIONED"))
    return table


def functions(stack):
    glob = stack.template.get("Globals", {}).get("Function", {})
    out = {}
    for logical, res in stack.of_type("AWS::Serverless::Function").items():
        props = {**glob, **res.get("Properties", {})}
        env = {**glob.get("Environment", {}).get("Variables", {}),
               **res.get("Properties", {}).get("Environment", {}).get("Variables", {})}
        binary = res["Metadata"]["BuildProperties"]["Binary"]
        out[stack.physical(logical)] = {
            "logical_id": logical,
            "arn": stack.get_att(logical, "Arn"),
            "binary": binary,
            "bootstrap": os.path.join(stack.lambda_dir, binary, "bootstrap"),
            "env": {k: str(v) for k, v in stack.resolve(env).items()},
            "timeout": int(stack.resolve(props.get("Timeout", 3))),
            "memory": int(stack.resolve(props.get("MemorySize", 128))),
        }
    return out


def lambda_invoke_resources(stack, policies):
    """The function ARNs the template's LambdaInvokePolicy entries allow."""
    arns = []
    for p in policies:
        if isinstance(p, dict) and "LambdaInvokePolicy" in p:
            fn = p["LambdaInvokePolicy"]["FunctionName"]
            logical = fn["Ref"] if isinstance(fn, dict) else fn
            arns.append(stack.get_att(logical, "Arn"))
    return arns


def deploy_state_machine(stack, c):
    logical, res = stack.the("AWS::Serverless::StateMachine")
    props = res["Properties"]
    with open(os.path.join(stack.dir, props["DefinitionUri"])) as f:
        definition = f.read()
    subs = stack.resolve(props.get("DefinitionSubstitutions", {}))
    definition = re.sub(r"\$\{(\w+)\}", lambda m: subs[m.group(1)] if m.group(1) in subs else m.group(0), definition)
    left = sorted(set(re.findall(r"\$\{(\w+)\}", definition)))
    if left:
        sys.exit(f"deploy.py: the state machine still has unresolved substitutions {left}")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
        "Service": ["states.amazonaws.com", "events.amazonaws.com"]}}]}
    role_name = f"{stack.name}-{logical}Role"
    role = c["iam"].create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sm_arn = stack.get_att(logical, "Arn")
    invoke = lambda_invoke_resources(stack, props.get("Policies", []))
    c["iam"].put_role_policy(RoleName=role_name, PolicyName="invoke-steps", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": invoke},
            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": sm_arn}]}))
    kwargs = {}
    logging = stack.resolve(props.get("Logging"))
    if logging:
        for d in logging.get("Destinations", []):
            c["logs"].create_log_group(logGroupName=d["CloudWatchLogsLogGroup"]["LogGroupArn"].split(":log-group:")[1]
                                       .rsplit(":", 1)[0])
        kwargs["loggingConfiguration"] = {
            "level": logging["Level"], "includeExecutionData": logging["IncludeExecutionData"],
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                             for d in logging.get("Destinations", [])]}
    created = c["stepfunctions"].create_state_machine(
        name=stack.physical(logical), definition=definition, roleArn=role, type=props.get("Type", "STANDARD"),
        **kwargs)["stateMachineArn"]
    if created != sm_arn:
        sys.exit(f"deploy.py: state machine ARN {created} differs from the expected {sm_arn}")

    rules = []
    for event_id, ev in props.get("Events", {}).items():
        ep = stack.resolve(ev.get("Properties", {}))
        rule = f"{stack.name}-{logical}-{event_id}"
        target = {"Id": "statemachine", "Arn": sm_arn, "RoleArn": role}
        if ev["Type"] == "EventBridgeRule":
            c["events"].put_rule(Name=rule, EventPattern=json.dumps(ep["Pattern"]), State=ep.get("State", "ENABLED"))
        elif ev["Type"] == "Schedule":
            c["events"].put_rule(Name=rule, ScheduleExpression=ep["Schedule"], State=ep.get("State", "ENABLED"),
                                 Description=ep.get("Description", ""))
        else:
            sys.exit(f"deploy.py: event {event_id} of type {ev['Type']} is not supported locally")
        if "Input" in ep:
            target["Input"] = ep["Input"]
        c["events"].put_targets(Rule=rule, Targets=[target])
        rules.append((event_id, rule))
    return sm_arn, rules


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", required=True)
    ap.add_argument("--stack-name", default="marquee-local")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--endpoint", required=True, help="LocalStack gateway URL")
    ap.add_argument("--dynamodb-endpoint", required=True, help="moto server URL")
    ap.add_argument("--lambda-dir", required=True, help="folder with <binary>/bootstrap")
    ap.add_argument("--functions-out", required=True, help="where to write functions.json")
    ap.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--functions-only", action="store_true",
                    help="only write functions.json (the Lambda service must run before the state machine is "
                         "created: LocalStack reaches other services through the gateway port it fronts)")
    args = ap.parse_args()

    overrides = dict(kv.split("=", 1) for kv in args.parameter_overrides)
    stack = Stack(args.template, args.stack_name, args.region, overrides, os.path.abspath(args.lambda_dir))
    fns = functions(stack)
    missing = [f["bootstrap"] for f in fns.values() if not os.access(f["bootstrap"], os.X_OK)]
    if missing:
        sys.exit("deploy.py: Lambda binaries missing (build them with `cargo lambda build --release`): "
                 + ", ".join(missing))
    foreign = [f["bootstrap"] for f in fns.values() if not runs_here(f["bootstrap"])]
    if foreign:
        sys.exit(f"deploy.py: not {platform.machine()} executables (an --arm64 build?): {', '.join(foreign)}; "
                 "rebuild with `cargo lambda build --release` (no --arm64) for the local stack")
    with open(args.functions_out, "w") as f:
        json.dump(fns, f, indent=2)
    if args.functions_only:
        return
    c = clients(args.endpoint, args.dynamodb_endpoint, args.region)
    bucket = deploy_bucket(stack, c)
    table = deploy_table(stack, c)
    sm_arn, rules = deploy_state_machine(stack, c)
    print(f"MARQUEE_BUCKET={bucket}")
    print(f"MARQUEE_TABLE={table}")
    print(f"MARQUEE_STATE_MACHINE_ARN={sm_arn}")
    for event_id, rule in rules:
        print(f"MARQUEE_RULE_{re.sub(r'[^A-Z0-9]', '_', event_id.upper())}={rule}")


if __name__ == "__main__":
    main()
