"""Deploys infra/template.yaml into the local stack the way CloudFormation would deploy it on AWS:
the SAM transform is done by the SAM translator itself (samtranslator, the library `sam validate`
and CloudFormation's AWS::Serverless transform run), and each resource of its output is created
from its CloudFormation properties. Nothing of the SAM template is re-read by hand: the roles,
their inline and managed policies, the functions' settings, the state machine and its event rules
are the translator's.

  AWS::IAM::Role            -> the IAM gateway (moto's IAM, which enforces them: iam_gateway.py) and
                               LocalStack's IAM (so the ARNs the state machine and rules name exist)
  AWS::Lambda::Function     -> functions.json for lambda_service.py: the bootstrap (a `sam build`
                               folder, <LogicalId>/bootstrap, or a `cargo lambda build` one,
                               <binary>/bootstrap), architecture, memory, timeout, ephemeral storage,
                               environment, and the credentials of a session of the function's role
                               (sts:AssumeRole, as Lambda does) with the gateway as AWS endpoint
  AWS::S3::Bucket(+Policy)  -> LocalStack S3: encryption, public access block, ownership, lifecycle,
                               EventBridge notifications, the bucket policy
  AWS::DynamoDB::Table      -> moto DynamoDB (LocalStack's needs a download): keys, billing
  AWS::Logs::LogGroup       -> LocalStack CloudWatch Logs
  AWS::StepFunctions::StateMachine -> LocalStack Step Functions with the definition file and its
                               DefinitionSubstitutions; as on AWS, creating it with Logging is
                               refused unless its role may deliver logs (checked by the gateway)
  AWS::Events::Rule         -> LocalStack EventBridge rules and targets (input transformers, retry
                               policies and dead-letter queues included)
  AWS::KMS::Key             -> LocalStack KMS (the key and its key policy; the policy is stored, not
                               evaluated)
  AWS::SNS::Topic(+Policy), AWS::SNS::Subscription -> LocalStack SNS (an e-mail subscription is
                               recorded, pending confirmation; no mail leaves the machine)
  AWS::SQS::Queue(+Policy)  -> LocalStack SQS
  AWS::CloudWatch::Alarm    -> LocalStack CloudWatch (created as on AWS; the local Lambda service and
                               Step Functions publish no metrics, so the alarms on them never fire)

Resources whose Condition is false are skipped, as CloudFormation does (and named on stderr).
Any other resource type stops the deployment. Parameters take the template's defaults, overridden
like `sam deploy --parameter-overrides K=V`. Prints the stack outputs as shell assignments.
"""

import argparse
import json
import os
import re
import sys

import boto3

ACCOUNT = "000000000000"
ADMIN = dict(aws_access_key_id="test", aws_secret_access_key="test")
# What CloudWatch Logs vended delivery needs from a state machine's role (Step Functions
# developer guide, "IAM policies for logging to CloudWatch Logs"); CreateStateMachine checks them.
LOG_DELIVERY_ACTIONS = ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"]


def translate(template_path, region):
    """The template after the AWS::Serverless transform, as CloudFormation would run it. Code and
    definition locations become S3 URIs first, as `sam package` makes them."""
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.transform import transform

    with open(template_path) as f:
        sam = yaml_parse(f.read())
    sources = {}
    for logical, res in sam["Resources"].items():
        props = res.setdefault("Properties", {})
        if res["Type"] == "AWS::Serverless::Function":
            sources[logical] = res.get("Metadata", {})
            props["CodeUri"] = f"s3://local-artifacts/{logical}.zip"
        elif res["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            sources[logical] = os.path.join(os.path.dirname(os.path.abspath(template_path)), props["DefinitionUri"])
            props["DefinitionUri"] = f"s3://local-artifacts/{logical}.asl.json"

    class NoManagedPolicyNames:
        def load(self):
            sys.exit("deploy.py: the template names a managed policy without its ARN; offline, use the ARN")

    return transform(sam, {}, NoManagedPolicyNames()), sources


class Stack:
    def __init__(self, template_path, stack_name, region, overrides, lambda_dir):
        self.template, self.sources = translate(template_path, region)
        self.name, self.region, self.lambda_dir = stack_name, region, lambda_dir
        params = self.template.get("Parameters", {})
        unknown = set(overrides) - set(params)
        if unknown:
            sys.exit(f"deploy.py: unknown parameter(s) {sorted(unknown)}; the template has {sorted(params)}")
        self.params = {k: str(overrides.get(k, p.get("Default", ""))) for k, p in params.items()}
        for k, p in params.items():
            if "AllowedValues" in p and self.params[k] not in map(str, p["AllowedValues"]):
                sys.exit(f"deploy.py: parameter {k}={self.params[k]} is not one of {p['AllowedValues']}")
        self.conditions = {}
        for name in self.template.get("Conditions", {}):
            self.condition(name)
        skipped = sorted(k for k, r in self.template["Resources"].items()
                         if "Condition" in r and not self.condition(r["Condition"]))
        if skipped:
            print(f"deploy.py: skipped (condition false): {', '.join(skipped)}", file=sys.stderr)
        self.resources = {k: r for k, r in self.template["Resources"].items() if k not in skipped}
        self.created = {}  # logical id -> the Ref value a service chose (queue URL, KMS key id)
        supported = {"AWS::IAM::Role", "AWS::Lambda::Function", "AWS::S3::Bucket", "AWS::S3::BucketPolicy",
                     "AWS::DynamoDB::Table", "AWS::Logs::LogGroup", "AWS::StepFunctions::StateMachine",
                     "AWS::Events::Rule", "AWS::KMS::Key", "AWS::SNS::Topic", "AWS::SNS::TopicPolicy",
                     "AWS::SNS::Subscription", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::CloudWatch::Alarm"}
        other = sorted(f"{k} ({r['Type']})" for k, r in self.resources.items() if r["Type"] not in supported)
        if other:
            sys.exit(f"deploy.py: no local deployment for {', '.join(other)}")

    def condition(self, name):
        """A Conditions entry, evaluated as CloudFormation does (Equals, Not, And, Or, Condition)."""
        if name not in self.conditions:
            self.conditions[name] = bool(self.evaluate(self.template["Conditions"][name]))
        return self.conditions[name]

    def evaluate(self, v):
        if isinstance(v, dict) and len(v) == 1:
            (k, arg), = v.items()
            if k == "Fn::Equals":
                a, b = (self.evaluate(x) for x in arg)
                return str(a) == str(b)
            if k == "Fn::Not":
                return not self.evaluate(arg[0])
            if k == "Fn::And":
                return all(self.evaluate(x) for x in arg)
            if k == "Fn::Or":
                return any(self.evaluate(x) for x in arg)
            if k == "Condition":
                return self.condition(arg)
            if k == "Ref" and arg in self.params:
                return self.params[arg]
            sys.exit(f"deploy.py: condition function {k} is not supported locally")
        return v

    def of_type(self, kind):
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    # Physical names: what CloudFormation would generate, made stable for a local stack.
    def physical(self, logical):
        kind = self.resources[logical]["Type"]
        if kind == "AWS::Lambda::Function":
            return f"{self.name}-{self.binary(logical)}"
        if kind == "AWS::Logs::LogGroup":
            return self.resolve(self.resources[logical]["Properties"]["LogGroupName"])
        if kind == "AWS::Events::Rule" and "Name" in self.resources[logical].get("Properties", {}):
            return self.resolve(self.resources[logical]["Properties"]["Name"])
        if kind == "AWS::StepFunctions::StateMachine" and "StateMachineName" in self.resources[logical]["Properties"]:
            return self.resolve(self.resources[logical]["Properties"]["StateMachineName"])
        if kind in ("AWS::IAM::Role", "AWS::Events::Rule", "AWS::SNS::Topic", "AWS::SQS::Queue"):
            return f"{self.name}-{logical}"
        return f"{self.name}-{logical}".lower()

    def binary(self, logical):
        return self.sources[logical].get("BuildProperties", {}).get("Binary", logical)

    def ref(self, logical):
        pseudo = {"AWS::StackName": self.name, "AWS::Region": self.region, "AWS::AccountId": ACCOUNT,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        if logical in pseudo:
            return pseudo[logical]
        if logical in self.params:
            return self.params[logical]
        if logical in self.created:
            return self.created[logical]
        if self.resources[logical]["Type"] in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
            return self.get_att(logical, "Arn")
        if self.resources[logical]["Type"] in ("AWS::SQS::Queue", "AWS::KMS::Key"):
            sys.exit(f"deploy.py: !Ref {logical} before it was created")
        return self.physical(logical)

    def get_att(self, logical, attr):
        kind, name = self.resources[logical]["Type"], self.physical(logical)
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{name}:*",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{self.region}:{ACCOUNT}:stateMachine:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::Events::Rule": f"arn:aws:events:{self.region}:{ACCOUNT}:rule/{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{self.region}:{ACCOUNT}:{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}",
        }
        if kind == "AWS::KMS::Key" and attr == "Arn" and logical in self.created:
            return f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{self.created[logical]}"
        if (kind, attr) in (("AWS::SQS::Queue", "QueueName"), ("AWS::SNS::Topic", "TopicName")):
            return name
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
                return self.get_att(*(arg.split(".", 1) if isinstance(arg, str) else arg))
            if k == "Fn::Join":
                return arg[0].join(str(x) for x in self.resolve(arg[1]))
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

    def props(self, logical):
        return self.resolve(self.resources[logical].get("Properties", {}))


def client(service, endpoint, region):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **ADMIN)


def bootstrap_of(stack, logical):
    """<dir>/<LogicalId>/bootstrap (sam build) or <dir>/<binary>/bootstrap (cargo lambda build)."""
    for folder in (logical, stack.binary(logical)):
        path = os.path.join(stack.lambda_dir, folder, "bootstrap")
        if os.access(path, os.X_OK):
            return path
    return None


def versioned(doc):
    """IAM reads a document without Version as 2008-10-17 (SAM's policy templates come out that way);
    moto accepts 2012-10-17 only. The two differ in policy variables alone, which no policy here uses."""
    if "Version" in doc:
        return doc
    if "${aws:" in json.dumps(doc):
        sys.exit(f"deploy.py: a policy without Version uses policy variables: {doc}")
    return {"Version": "2012-10-17", **doc}


def deploy_roles(stack, iam_clients):
    """Every role of the translated template, in each IAM (the gateway's enforces them)."""
    arns = {}
    for logical, _ in stack.of_type("AWS::IAM::Role").items():
        props = stack.props(logical)
        name = stack.physical(logical)
        for iam in iam_clients:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
            for policy in props.get("Policies", []):
                iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                    PolicyDocument=json.dumps(versioned(policy["PolicyDocument"])))
            for arn in props.get("ManagedPolicyArns", []):
                try:
                    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
                except iam.exceptions.NoSuchEntityException:
                    if iam is iam_clients[0]:
                        raise
        arns[logical] = stack.get_att(logical, "Arn")
    return arns


def role_logical(stack, role_value):
    """The logical id of the role a `Role` / `RoleArn` property names."""
    for logical in stack.of_type("AWS::IAM::Role"):
        if stack.get_att(logical, "Arn") == role_value:
            return logical
    sys.exit(f"deploy.py: role {role_value} is not a role of this template")


def functions(stack, sts, gateway):
    """functions.json: what lambda_service.py runs, with a session of each function's role."""
    out = {}
    for logical in stack.of_type("AWS::Lambda::Function"):
        props = stack.props(logical)
        bootstrap = bootstrap_of(stack, logical)
        if bootstrap is None:
            sys.exit(f"deploy.py: no {logical}/bootstrap or {stack.binary(logical)}/bootstrap in {stack.lambda_dir} "
                     "(`sam build` or `cargo lambda build --release`)")
        name = stack.physical(logical)
        session = sts.assume_role(RoleArn=props["Role"], RoleSessionName=name)["Credentials"]
        out[name] = {
            "logical_id": logical,
            "arn": stack.get_att(logical, "Arn"),
            "binary": stack.binary(logical),
            "bootstrap": bootstrap,
            "architecture": (props.get("Architectures") or ["x86_64"])[0],
            "role": props["Role"],
            "env": {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
            # What Lambda sets itself (not part of the function's Environment): the role's session,
            # and here the endpoint that enforces it.
            "service_env": {
                "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
                "AWS_SESSION_TOKEN": session["SessionToken"],
                "AWS_ENDPOINT_URL": gateway,
                "AWS_ENDPOINT_URL_DYNAMODB": gateway,
            },
            "timeout": int(props.get("Timeout", 3)),
            "memory": int(props.get("MemorySize", 128)),
            "ephemeral_storage": int(props.get("EphemeralStorage", {}).get("Size", 512)),
        }
    return out


def deploy_bucket(stack, s3):
    (logical, _), = stack.of_type("AWS::S3::Bucket").items()
    props = stack.props(logical)
    bucket = stack.physical(logical)
    s3.create_bucket(Bucket=bucket)
    if "BucketEncryption" in props:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        rules = [{("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                  for k, v in rule.items()}
                 for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=props["OwnershipControls"])
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=props["VersioningConfiguration"])
    if "LifecycleConfiguration" in props:
        rules = []
        for r in props["LifecycleConfiguration"]["Rules"]:
            rule = {"ID": r["Id"], "Status": r["Status"], "Filter": {"Prefix": r.get("Prefix", "")}}
            # Parameters resolve to strings; the API wants numbers.
            for k in ("AbortIncompleteMultipartUpload", "NoncurrentVersionExpiration"):
                if k in r:
                    rule[k] = {f: int(v) for f, v in r[k].items()}
            if "ExpirationInDays" in r:
                rule["Expiration"] = {"Days": int(r["ExpirationInDays"])}
            if r.get("ExpiredObjectDeleteMarker"):
                rule["Expiration"] = {**rule.get("Expiration", {}), "ExpiredObjectDeleteMarker": True}
            rules.append(rule)
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    if props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(Bucket=bucket,
                                                 NotificationConfiguration={"EventBridgeConfiguration": {}})
    for logical in stack.of_type("AWS::S3::BucketPolicy"):
        p = stack.props(logical)
        s3.put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(p["PolicyDocument"]))
    return bucket


def deploy_table(stack, dynamodb):
    (logical, _), = stack.of_type("AWS::DynamoDB::Table").items()
    props = stack.props(logical)
    table = stack.physical(logical)
    dynamodb.create_table(TableName=table, AttributeDefinitions=props["AttributeDefinitions"],
                          KeySchema=props["KeySchema"], BillingMode=props.get("BillingMode", "PROVISIONED"),
                          DeletionProtectionEnabled=bool(props.get("DeletionProtectionEnabled", False)))
    return table


def authorize(gateway, principal, action, resource, via):
    import urllib.request
    req = urllib.request.Request(f"{gateway}/_marquee/authorize", method="POST", data=json.dumps(
        {"principal": principal, "action": action, "resource": resource, "via": via}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["allowed"]


def deploy_state_machine(stack, c, gateway):
    (logical, _), = stack.of_type("AWS::StepFunctions::StateMachine").items()
    props = stack.props(logical)
    with open(stack.sources[logical]) as f:
        definition = f.read()
    subs = props.get("DefinitionSubstitutions", {})
    definition = re.sub(r"\$\{(\w+)\}", lambda m: str(subs.get(m.group(1), m.group(0))), definition)
    left = sorted(set(re.findall(r"\$\{(\w+)\}", definition)))
    if left:
        sys.exit(f"deploy.py: the state machine still has unresolved substitutions {left}")
    kwargs = {}
    logging = props.get("LoggingConfiguration")
    if logging:
        denied = [a for a in LOG_DELIVERY_ACTIONS if not authorize(gateway, props["RoleArn"], a, "*", "CreateStateMachine")]
        if denied:
            sys.exit(f"deploy.py: CreateStateMachine: AccessDeniedException: the state machine's role {props['RoleArn']} "
                     f"is not authorized to deliver logs ({', '.join(denied)} on *)")
        for d in logging.get("Destinations", []):
            group = d["CloudWatchLogsLogGroup"]["LogGroupArn"].split(":log-group:")[1].rsplit(":", 1)[0]
            try:
                c["logs"].create_log_group(logGroupName=group)
            except c["logs"].exceptions.ResourceAlreadyExistsException:
                pass
        kwargs["loggingConfiguration"] = {
            "level": logging["Level"], "includeExecutionData": logging["IncludeExecutionData"],
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                             for d in logging.get("Destinations", [])]}
    if props.get("TracingConfiguration"):
        kwargs["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
    sm_arn = stack.get_att(logical, "Arn")
    if re.search(r'"Mode"\s*:\s*"DISTRIBUTED"', definition):
        # A Distributed Map starts its children as executions of the state machine itself: AWS
        # checks the role for that when the map starts them. LocalStack runs the children in-process
        # without asking, so the gateway decides those calls here, once per deployment (a child's
        # execution ARN is <state machine name>/<map run label>:<child>).
        child = sm_arn.replace(":stateMachine:", ":execution:") + "/ScoreParts:child"
        calls = [("states:StartExecution", sm_arn), ("states:DescribeExecution", child), ("states:StopExecution", child)]
        denied = [f"{a} on {r}" for a, r in calls if not authorize(gateway, props["RoleArn"], a, r, "DistributedMap")]
        if denied:
            sys.exit(f"deploy.py: the state machine's role {props['RoleArn']} cannot run its Distributed Map's "
                     f"children: not authorized to {'; '.join(denied)}")
    created = c["stepfunctions"].create_state_machine(
        name=stack.physical(logical), definition=definition, roleArn=props["RoleArn"],
        type=props.get("StateMachineType", "STANDARD"), **kwargs)["stateMachineArn"]
    if created != sm_arn:
        sys.exit(f"deploy.py: state machine ARN {created} differs from the expected {sm_arn}")
    return logical, sm_arn


def deploy_rules(stack, events):
    rules = []
    for logical in stack.of_type("AWS::Events::Rule"):
        props = stack.props(logical)
        name = stack.physical(logical)
        kw = {"Name": name, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            kw["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            kw["ScheduleExpression"] = props["ScheduleExpression"]
        if "Description" in props:
            kw["Description"] = props["Description"]
        events.put_rule(**kw)
        events.put_targets(Rule=name, Targets=props["Targets"])
        rules.append((logical, name))
    return rules


def deploy_alerting(stack, c):
    """KMS keys, SQS queues, SNS topics (before the rules that target them)."""
    for logical in stack.of_type("AWS::KMS::Key"):
        props = stack.props(logical)
        key = c["kms"].create_key(Description=props.get("Description", logical), Policy=json.dumps(props["KeyPolicy"]))
        stack.created[logical] = key["KeyMetadata"]["KeyId"]
        if props.get("EnableKeyRotation"):
            c["kms"].enable_key_rotation(KeyId=stack.created[logical])
    for logical in stack.of_type("AWS::SQS::Queue"):
        props = stack.props(logical)
        attrs = {k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k])
                 for k in ("MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout") if k in props}
        stack.created[logical] = c["sqs"].create_queue(QueueName=stack.physical(logical), Attributes=attrs)["QueueUrl"]
    for logical in stack.of_type("AWS::SNS::Topic"):
        props = stack.props(logical)
        attrs = {k: str(props[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in props}
        arn = c["sns"].create_topic(Name=stack.physical(logical), Attributes=attrs)["TopicArn"]
        if arn != stack.get_att(logical, "Arn"):
            sys.exit(f"deploy.py: topic ARN {arn} differs from the expected {stack.get_att(logical, 'Arn')}")


def deploy_alerting_policies(stack, c):
    """Topic and queue policies, subscriptions, alarms (after the rules their conditions name)."""
    for logical in stack.of_type("AWS::SNS::TopicPolicy"):
        props = stack.props(logical)
        for topic in props["Topics"]:
            c["sns"].set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                                          AttributeValue=json.dumps(props["PolicyDocument"]))
    for logical in stack.of_type("AWS::SQS::QueuePolicy"):
        props = stack.props(logical)
        for url in props["Queues"]:
            c["sqs"].set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    for logical in stack.of_type("AWS::SNS::Subscription"):
        props = stack.props(logical)
        c["sns"].subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"])
        print(f"deploy.py: {logical}: {props['Protocol']} subscription recorded (pending; no mail is sent locally)",
              file=sys.stderr)
    alarms = stack.of_type("AWS::CloudWatch::Alarm")
    for logical in alarms:
        props = stack.props(logical)
        kw = {k: v for k, v in props.items() if k != "AlarmName"}
        c["cloudwatch"].put_metric_alarm(AlarmName=props.get("AlarmName", f"{stack.name}-{logical}"), **kw)
    if alarms:
        print(f"deploy.py: {len(alarms)} CloudWatch alarms created; the local Lambda service and Step Functions "
              "publish no AWS/Lambda or AWS/States metrics, so the alarms on them never fire here", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", required=True)
    ap.add_argument("--stack-name", default="marquee-local")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--endpoint", required=True, help="LocalStack gateway URL")
    ap.add_argument("--dynamodb-endpoint", required=True, help="moto server URL")
    ap.add_argument("--iam-gateway", required=True, help="iam_gateway.py URL (IAM, STS; the functions' endpoint)")
    ap.add_argument("--lambda-dir", required=True, help="`sam build` output (.aws-sam/build) or <binary>/bootstrap folders")
    ap.add_argument("--functions-out", required=True, help="where to write functions.json")
    ap.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--functions-only", action="store_true",
                    help="only the roles and functions.json (the Lambda service must run before the state machine "
                         "is created: LocalStack reaches other services through the gateway port it fronts)")
    args = ap.parse_args()

    overrides = dict(kv.split("=", 1) for kv in args.parameter_overrides)
    stack = Stack(args.template, args.stack_name, args.region, overrides, os.path.abspath(args.lambda_dir))
    if args.functions_only:
        deploy_roles(stack, [client("iam", args.iam_gateway, args.region)])
        fns = functions(stack, client("sts", args.iam_gateway, args.region), args.iam_gateway)
        with open(args.functions_out, "w") as f:
            json.dump(fns, f, indent=2)
        return
    c = {s: client(s, args.endpoint, args.region)
         for s in ("s3", "stepfunctions", "events", "iam", "logs", "kms", "sns", "sqs", "cloudwatch")}
    deploy_roles(stack, [c["iam"]])
    bucket = deploy_bucket(stack, c["s3"])
    table = deploy_table(stack, client("dynamodb", args.dynamodb_endpoint, args.region))
    for logical in stack.of_type("AWS::Logs::LogGroup"):
        c["logs"].create_log_group(logGroupName=stack.physical(logical))
        days = stack.props(logical).get("RetentionInDays")
        if days:
            c["logs"].put_retention_policy(logGroupName=stack.physical(logical), retentionInDays=int(days))
    deploy_alerting(stack, c)
    sm_logical, sm_arn = deploy_state_machine(stack, c, args.iam_gateway)
    rules = deploy_rules(stack, c["events"])
    deploy_alerting_policies(stack, c)
    print(f"MARQUEE_BUCKET={bucket}")
    print(f"MARQUEE_TABLE={table}")
    print(f"MARQUEE_STATE_MACHINE_ARN={sm_arn}")
    print(f"MARQUEE_STATE_MACHINE_ROLE_ARN={stack.props(sm_logical)['RoleArn']}")
    for logical in stack.of_type("AWS::SNS::Topic"):
        print(f"MARQUEE_TOPIC_{re.sub(r'[^A-Z0-9]', '_', logical.upper())}={stack.ref(logical)}")
    for logical in stack.of_type("AWS::SQS::Queue"):
        print(f"MARQUEE_QUEUE_{re.sub(r'[^A-Z0-9]', '_', logical.upper())}={stack.ref(logical)}")
    for logical, rule in rules:
        event_id = logical[len(sm_logical):] if logical.startswith(sm_logical) else logical
        print(f"MARQUEE_RULE_{re.sub(r'[^A-Z0-9]', '_', event_id.upper())}={rule}")


if __name__ == "__main__":
    main()
