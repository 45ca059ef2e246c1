#!/usr/bin/env python3
"""Validates statemachines/pipeline.asl.json against infra/template.yaml (used by scripts/aws-checks).

1. Every ${Name} in the ASL is a DefinitionSubstitutions key of the template; substitute fake ARNs
   (and a number for the unquoted numeric ones, e.g. ${ExecutionTimeout}, ${ScoreConcurrency}).
2. Structure: StartAt and every Next/Default/Catch target exist (Map item processors included).
3. cfn-lint's Step Functions schema: lint a throw-away template holding the substituted definition inline.
4. moto: CreateStateMachine + DescribeStateMachine on the moto endpoint given as argv[1].
"""
import json, re, subprocess, sys, tempfile, os

import boto3

endpoint, asl_path, template_path = sys.argv[1:4]
text = open(asl_path).read()
template = open(template_path).read()

block = re.search(r"DefinitionSubstitutions:\n((?:\s{8,}\S.*\n)+)", template)
if not block:
    sys.exit(f"{template_path}: no DefinitionSubstitutions block")
defined = set(re.findall(r"^\s+(\w+):", block.group(1), re.M))
used = set(re.findall(r"\$\{(\w+)\}", text))
missing = used - defined
if missing:
    sys.exit(f"ASL uses substitutions the template does not define: {sorted(missing)}")
for name in used:
    if name.endswith("FunctionArn"):
        fn = re.sub(r"FunctionArn$", "", name).lower()
        text = text.replace("${%s}" % name, f"arn:aws:lambda:us-east-1:123456789012:function:marquee-{fn}")
    else:
        # A number, substituted unquoted: ExecutionTimeout (the state machine's TimeoutSeconds),
        # ScoreConcurrency (the scoring Distributed Map's MaxConcurrency).
        text = text.replace("${%s}" % name, {"ExecutionTimeout": "14400"}.get(name, "10"))
definition = json.loads(text)

errors = []
def check(states_obj, where):
    states = states_obj["States"]
    if states_obj["StartAt"] not in states:
        errors.append(f"{where}: StartAt {states_obj['StartAt']} is not a state")
    for name, st in states.items():
        targets = [st.get("Next"), st.get("Default")] + [c.get("Next") for c in st.get("Choices", []) + st.get("Catch", [])]
        for t in filter(None, targets):
            if t not in states:
                errors.append(f"{where}.{name}: goes to unknown state {t}")
        if st["Type"] not in ("Choice", "Fail", "Succeed") and not st.get("End") and not st.get("Next"):
            errors.append(f"{where}.{name}: neither Next nor End")
        for key in ("ItemProcessor", "Iterator"):
            if key in st:
                check(st[key], f"{where}.{name}")
        for i, branch in enumerate(st.get("Branches", [])):
            check(branch, f"{where}.{name}[{i}]")
check(definition, "States")
if errors:
    sys.exit("\n".join(errors))
print(f"structure ok: {len(used)} substitutions, {len(definition['States'])} top-level states")

with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Pipeline": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/marquee-pipeline", "Definition": definition}}}}, f)
lint = subprocess.run(["cfn-lint", "--regions", "us-east-1", "--", f.name], capture_output=True, text=True)
os.unlink(f.name)
if lint.returncode != 0:
    sys.exit("cfn-lint on the ASL:\n" + lint.stdout + lint.stderr)
print("cfn-lint (Step Functions schema) ok")

sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
arn = sfn.create_state_machine(name="marquee-pipeline-check", definition=json.dumps(definition),
                               roleArn="arn:aws:iam::123456789012:role/marquee-pipeline", type="STANDARD")["stateMachineArn"]
described = sfn.describe_state_machine(stateMachineArn=arn)
assert json.loads(described["definition"]) == definition, "moto returned another definition"
print(f"moto CreateStateMachine ok: {arn}")
