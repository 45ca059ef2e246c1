"""Least privilege, both ways, for every role of infra/template.yaml (run inside the local stack, after
the integration tests, whose every AWS call the IAM gateway decided and logged).

1. No denial: every call a function (or the state machine, invoking functions and creating its log
   delivery) made in the full enforced flow was allowed.
2. Every statement is needed: for each role and each statement of the template's policies (the SAM
   translator's output, policy templates expanded), a variant of the role without that one
   statement is generated and every call the role made is decided again by the same engine (moto's
   IAM evaluator, with the role's managed policies). A statement is needed when the variant denies
   at least one call: that call (function, action, resource) is reported. A statement no call needs
   fails the check: remove it from the template.
3. A removed statement fails the run: for each function that runs in a retraining run (started
   with "retrain": true, so that unchanged data is trained again; Normalize, Ingest and Summarize,
   which every run invokes, in a run on the unchanged data), the
   statement behind its first call is removed from the live role (through the gateway's IAM API),
   an execution is started, and it must fail at that function with Marquee.StepFailed (no retry),
   its cause naming the action and the resource; the statement is then put back.

Managed policies SAM attaches (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess) are used by the
Lambda and X-Ray services themselves, not by calls the functions make: they are listed, not varied.
Exit status 0 only if every check passes. Prints a table of every variant.
"""

import argparse
import collections
import functools
import json
import os
import re
import sys
import time

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy import Stack  # noqa: E402
from iam_gateway import allowed_by  # noqa: E402  (sets moto's account and managed policies first)
from moto.iam.access_control import IAMPolicy  # noqa: E402
from moto.iam.aws_managed_policies import aws_managed_policies_data  # noqa: E402

# Functions every execution invokes, whether it trains or not: their variants run on unchanged data.
IN_EVERY_RUN = {"NormalizeFunction", "IngestFunction", "SummarizeFunction"}


@functools.cache
def managed_policies():
    return json.loads(aws_managed_policies_data)


def managed_policy(arn):
    """The document moto ships for an AWS managed policy (None if it has none)."""
    entry = managed_policies().get(arn.rsplit("/", 1)[1])
    return entry["Document"] if entry else None


def allowed(docs, action, resource):
    return allowed_by([IAMPolicy(json.dumps(doc)) for doc in docs], action, resource)


def roles_of(stack):
    """role name -> (function logical id or None, [(policy name, document)], [managed docs], [managed arns])"""
    out = {}
    functions = {stack.props(l)["Role"]: l for l in stack.of_type("AWS::Lambda::Function")}
    for logical in stack.of_type("AWS::IAM::Role"):
        props = stack.props(logical)
        arn = stack.get_att(logical, "Arn")
        inline = [(p["PolicyName"], p["PolicyDocument"]) for p in props.get("Policies", [])]
        arns = props.get("ManagedPolicyArns", [])
        out[stack.physical(logical)] = (functions.get(arn), inline, [managed_policy(a) for a in arns], arns)
    return out


def statements(doc):
    s = doc["Statement"]
    return s if isinstance(s, list) else [s]


def without(inline, policy_name, index):
    docs = []
    for name, doc in inline:
        if name == policy_name:
            kept = [st for i, st in enumerate(statements(doc)) if i != index]
            if kept:
                docs.append({**doc, "Statement": kept})
        else:
            docs.append(doc)
    return docs


def short(action_or_list):
    return ",".join(action_or_list) if isinstance(action_or_list, list) else action_or_list


def analyse(roles, decisions):
    """(rows, problems, first call per statement) of the drop-one-statement replay."""
    calls = collections.defaultdict(list)
    problems = []
    for d in decisions:
        if not d["allowed"]:
            problems.append(f"denied in the enforced flow: {d['role']} {d['action']} on {d['resource']} ({d['via']})")
        elif d["role"] in roles:
            key = (d["action"], d["resource"])
            if key not in calls[d["role"]]:
                calls[d["role"]].append(key)
    rows, needed_by = [], {}
    for role, (function, inline, managed, _) in sorted(roles.items()):
        for policy_name, doc in inline:
            for i, st in enumerate(statements(doc)):
                variant = without(inline, policy_name, i) + [m for m in managed if m]
                denied = [c for c in calls[role] if not allowed(variant, *c)]
                rows.append((role, policy_name, i, short(st["Action"]), short(st["Resource"]), len(calls[role]), denied))
                if denied:
                    needed_by[(role, policy_name, i)] = denied[0]
                else:
                    problems.append(f"unused statement: {role} {policy_name}[{i}] {short(st['Action'])} on "
                                    f"{short(st['Resource'])}: none of the role's {len(calls[role])} calls needs it; "
                                    "remove it from infra/template.yaml")
    return rows, problems, needed_by


DENIED = re.compile(r"perform: (\S+) on resource: (\S+?) because")


def real_runs(roles, needed_by, decisions, env, timeout):
    """Removes, per function of a retraining run, the statement its first call needs; the run must
    fail at that function, without a retry (Marquee.StepFailed), naming an action and resource that
    the removed statement alone allowed."""
    region = env["AWS_REGION"]
    admin = dict(region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
    iam = boto3.client("iam", endpoint_url=env["MARQUEE_IAM_GATEWAY"], **admin)
    sfn = boto3.client("stepfunctions", endpoint_url=env["MARQUEE_LOCALSTACK_ENDPOINT"], **admin)
    first_call = {}
    for d in decisions:
        if d["allowed"] and d["via"] == "request" and d["role"] not in first_call:
            first_call[d["role"]] = (d["action"], d["resource"])
    results, problems = [], []
    for role, (function, inline, managed, _) in sorted(roles.items()):
        if function is None or function == "DeployFunction" or role not in first_call:
            continue  # (a retraining run on unchanged data does not reach Deploy)
        target = next((k for k, v in needed_by.items() if k[0] == role and v == first_call[role]), None)
        if target is None:
            continue
        _, policy_name, index = target
        doc = dict(inline)[policy_name]
        kept = [st for i, st in enumerate(statements(doc)) if i != index]
        full = [d for _, d in inline] + [m for m in managed if m]
        variant = without(inline, policy_name, index) + [m for m in managed if m]
        if kept:
            iam.put_role_policy(RoleName=role, PolicyName=policy_name,
                                PolicyDocument=json.dumps({"Version": "2012-10-17", **doc, "Statement": kept}))
        else:
            iam.delete_role_policy(RoleName=role, PolicyName=policy_name)
        t0 = time.time()
        try:
            # A run on unchanged data (Normalize, Ingest, Summarize) reaches Summarize in seconds,
            # where a retraining run first trains every use case.
            run = {"spec_key": "raw/demo/pipeline.toml", "retrain": function not in IN_EVERY_RUN}
            arn = sfn.start_execution(stateMachineArn=env["MARQUEE_STATE_MACHINE_ARN"],
                                      input=json.dumps(run))["executionArn"]
            while (d := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                if time.time() - t0 > timeout:
                    raise SystemExit(f"least_privilege.py: execution {arn} still running after {timeout}s")
                time.sleep(1)
            failures = []
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
                for ev in page["events"]:
                    if ev["type"] == "LambdaFunctionFailed":
                        det = ev["lambdaFunctionFailedEventDetails"]
                        failures.append((det.get("error", ""), det.get("cause", "")))
        finally:
            iam.put_role_policy(RoleName=role, PolicyName=policy_name,
                                PolicyDocument=json.dumps({"Version": "2012-10-17", **doc}))
        # The functions' own failures (LocalStack reports the Map's other, aborted branches as
        # "Exception" with its internal message; those are not the functions').
        failures = [f for f in failures if f[0].startswith(("Marquee.", "Lambda.", "Sandbox.", "Runtime."))]
        named = [m.groups() for _, cause in failures for m in [DENIED.search(cause)] if m]
        ok = (d["status"] == "FAILED" and failures and all(e == "Marquee.StepFailed" for e, _ in failures)
              and named and all(allowed(full, a, r) and not allowed(variant, a, r) for a, r in named))
        results.append((role, policy_name, index, d["status"], [e for e, _ in failures], named[:1],
                        round(time.time() - t0, 1)))
        if not ok:
            problems.append(f"removing {role} {policy_name}[{index}] should fail the run at {function} with "
                            f"Marquee.StepFailed naming an action and resource only that statement allows; got "
                            f"{d['status']} {failures[:2]}")
    return results, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", default="infra/template.yaml")
    ap.add_argument("--stack-name", default="marquee-local")
    ap.add_argument("--decisions", default=os.environ.get("MARQUEE_IAM_DECISIONS"))
    ap.add_argument("--no-real-runs", action="store_true", help="only the replay (no executions)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per execution")
    args = ap.parse_args()
    with open(args.decisions) as f:
        decisions = [json.loads(line) for line in f if line.strip()]
    stack = Stack(args.template, args.stack_name, os.environ.get("AWS_REGION", "us-east-1"), {}, ".")
    roles = roles_of(stack)
    rows, problems, needed_by = analyse(roles, decisions)

    print(f"{'role':44} {'policy':40} {'#':>2} {'actions':52} {'calls':>5}  verdict")
    for role, policy, i, actions, resource, n, denied in rows:
        verdict = f"needed: without it {denied[0][0]} on {denied[0][1]} is denied" if denied else "UNUSED"
        print(f"{role:44} {policy:40} {i:>2} {actions[:52]:52} {n:>5}  {verdict}")
    for role, (_, _, _, arns) in sorted(roles.items()):
        if arns:
            print(f"{role}: managed (SAM): {', '.join(a.rsplit('/', 1)[1] for a in arns)}")
    n_statements = len(rows)
    print(f"== {n_statements} statements in {len(roles)} roles, {n_statements} variants replayed against "
          f"{len(decisions)} recorded decisions; {sum(1 for r in rows if r[6])} needed")

    if not args.no_real_runs and not problems:
        env = dict(os.environ)
        results, run_problems = real_runs(roles, needed_by, decisions, env, args.timeout)
        for role, policy, i, status, errors, named, secs in results:
            print(f"real run without {role} {policy}[{i}]: {status} in {secs}s, {errors}, denied {named}")
        print(f"== {len(results)} variants run for real")
        problems += run_problems
    for p in problems:
        print(f"FAIL: {p}")
    passed = n_statements - sum(1 for p in problems if p.startswith("unused"))
    print(f"least-privilege: {passed} passed, {len(problems)} failed")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
