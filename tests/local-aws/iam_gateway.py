"""IAM for the local stack: the functions' AWS endpoint, enforcing each one's execution role.

LocalStack community does not enforce IAM, and moto checks DynamoDB requests against resource "*".
This gateway stands where the functions' S3 and DynamoDB endpoints are and decides every request
with moto's IAM engine (moto.iam.access_control: the principal's inline and managed policies,
explicit Deny over Allow, wildcards, conditions), against the real resource ARN:

  IAM, STS requests       -> moto's own IAM and STS (in this process): deploy.py creates each role
                             from the SAM translator's output and assumes it; those credentials are
                             what each function runs with, as Lambda hands them to a function
  S3 requests             -> action from moto's S3 ACTION_MAP (method + sub-resource), resource
                             arn:aws:s3:::bucket[/key]; allowed ones go on to LocalStack
  DynamoDB requests       -> action from X-Amz-Target, resource the table ARN (every table of a batch);
                             allowed ones go on to the moto server that holds the table
  Step Functions requests -> action from X-Amz-Target, resource the execution or state machine ARN
                             of the request; allowed ones go on to LocalStack
  GET /_marquee/decisions -> every decision so far (JSON lines, also written to --log)
  POST /_marquee/authorize {"principal": role ARN, "action", "resource"} -> {"allowed": bool}:
                             the same engine for calls that do not pass through here (the state
                             machine's role invoking functions, checked by lambda_service.py)

Requests signed with the stack's administrator key (--admin-key, what tests and deploy.py use)
pass unchecked, like an account's administrator. Any other key must be a session of an assumed
role here, with its session token; otherwise the request is refused (InvalidAccessKeyId).

As S3 does, a GetObject/HeadObject of an absent key answers 404 only to a caller allowed
s3:ListBucket on the bucket, 403 AccessDenied to any other.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

# Before moto is imported: the account of the local stack, and AWS managed policies (SAM attaches
# AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess) available to attach.
os.environ.setdefault("MOTO_ACCOUNT_ID", "000000000000")
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

from moto.iam.access_control import IAMRequest, PermissionResult, IAMPolicy  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from moto.s3.responses import ACTION_MAP as S3_ACTION_MAP  # noqa: E402
from moto.sts.models import sts_backends  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

ACCOUNT = os.environ["MOTO_ACCOUNT_ID"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host"}


def credential_scope(auth):
    """(access key id, region, service) of a SigV4 Authorization header, or None."""
    if not auth or "Credential=" not in auth:
        return None
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip().split("/")
    return (scope[0], scope[2], scope[3]) if len(scope) >= 5 else None


def s3_action_resource(method, path, query):
    """IAM action and resource of a path-style S3 request."""
    parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    kind = "KEY" if key else "BUCKET"
    actions = S3_ACTION_MAP[kind].get(method, {})
    # (ListObjects / ListObjectsV2, a GET of the bucket, come out as s3:ListBucket on the bucket.)
    action = next((a for sub, a in actions.items() if sub != "DEFAULT" and sub in query), actions.get("DEFAULT"))
    resource = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
    return f"s3:{action}", [resource], bucket, key


def dynamodb_action_resources(target, body, region):
    """IAM action and table ARNs of a DynamoDB JSON request (X-Amz-Target: DynamoDB_20120810.Op)."""
    op = target.split(".", 1)[1]
    doc = json.loads(body or b"{}")
    tables = [doc["TableName"]] if "TableName" in doc else []
    tables.extend(sorted(doc.get("RequestItems", {})))  # BatchWriteItem / BatchGetItem
    for item in doc.get("TransactItems", []):
        for v in item.values():
            if isinstance(v, dict) and "TableName" in v:
                tables.append(v["TableName"])
    arns = []
    for t in tables or ["*"]:
        arn = t if t.startswith("arn:") else f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{t}"
        if doc.get("IndexName"):
            arn += f"/index/{doc['IndexName']}"
        arns.append(arn)
    return f"dynamodb:{op}", arns


def states_action_resource(target, body):
    """IAM action and resource of a Step Functions JSON request (X-Amz-Target: AWSStepFunctions.Op)."""
    op = target.split(".", 1)[1]
    doc = json.loads(body or b"{}")
    resource = doc.get("executionArn") or doc.get("stateMachineArn") or "*"
    return f"states:{op}", [resource]


class Decisions:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.rows = []
        self.file = open(path, "a", buffering=1) if path else None

    def add(self, row):
        row = {"time": round(time.time(), 3), **row}
        with self.lock:
            self.rows.append(row)
            if self.file:
                self.file.write(json.dumps(row) + "\n")


def role_of_session(access_key_id, session_token):
    """(role ARN, session ARN) of an assumed-role session, or None."""
    for role in sts_backends[ACCOUNT]["aws"].assumed_roles:
        if role.access_key_id == access_key_id and role.session_token == session_token:
            return role.role_arn, role.arn
    return None


def role_policies(role_arn):
    """A role's policies, inline and attached managed, as moto's evaluator takes them."""
    backend = iam_backends[ACCOUNT]["aws"]
    name = role_arn.rsplit("/", 1)[1]
    inline = [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
    attached, _ = backend.list_attached_role_policies(name)
    return [IAMPolicy(d if isinstance(d, str) else json.dumps(d)) for d in inline] + [IAMPolicy(p) for p in attached]


def allowed_for_role(role_arn, action, resource):
    return allowed_by(role_policies(role_arn), action, resource)


def allowed_by(policies, action, resource):
    """moto's evaluation of a principal's IAMPolicy list (as IAMRequest.check_action_permitted
    combines it): an explicit Deny wins, then any Allow; nothing allows = denied."""
    permitted = False
    for policy in policies:
        result = policy.is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


def allowed_for_request(headers, method, path, action, resource):
    """The request as moto's IAMRequest sees it (the session's role, its policies)."""
    try:
        req = IAMRequest(account_id=ACCOUNT, method=method, path=path, data={}, body=b"", headers=headers,
                         action=action.split(":", 1)[1])
        req.check_action_permitted(resource)
        return True
    except Exception:  # moto raises its AccessDenied error classes
        return False


def denied_message(session_arn, action, resource):
    return (f"User: {session_arn} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action")


class Gateway:
    def __init__(self, s3_upstream, dynamodb_upstream, admin_key, decisions):
        self.upstreams = {"s3": urllib.parse.urlsplit(s3_upstream), "dynamodb": urllib.parse.urlsplit(dynamodb_upstream),
                          "states": urllib.parse.urlsplit(s3_upstream)}
        self.admin_key = admin_key
        self.decisions = decisions
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_marquee/"):
            return self.admin(Request(environ))(environ, start_response)
        scope = credential_scope(environ.get("HTTP_AUTHORIZATION"))
        service = scope[2] if scope else None
        if service in ("iam", "sts"):
            return self.moto(environ, start_response)
        if service not in self.upstreams:
            return self.error_json(400, "UnknownService", f"the local IAM gateway serves s3, dynamodb and states, not {service}")(
                environ, start_response)
        return self.enforce(Request(environ), scope)(environ, start_response)

    # ------------------------------------------------------------------ admin
    def admin(self, req):
        if req.path == "/_marquee/decisions" and req.method == "GET":
            with self.decisions.lock:
                body = "".join(json.dumps(r) + "\n" for r in self.decisions.rows)
            return Response(body, mimetype="application/x-ndjson")
        if req.path == "/_marquee/authorize" and req.method == "POST":
            doc = json.loads(req.get_data() or b"{}")
            allowed = allowed_for_role(doc["principal"], doc["action"], doc["resource"])
            self.decisions.add({"role": doc["principal"].rsplit("/", 1)[1], "action": doc["action"],
                                "resource": doc["resource"], "allowed": allowed, "via": doc.get("via", "authorize")})
            return Response(json.dumps({"allowed": allowed}), mimetype="application/json")
        return Response("not found", status=404)

    # ------------------------------------------------------------------ enforcement
    def enforce(self, req, scope):
        access_key, region, service = scope
        body = req.get_data()
        bucket = key = None
        if service == "s3":
            action, resources, bucket, key = s3_action_resource(req.method, req.path, req.args)
        elif service == "states":
            action, resources = states_action_resource(req.headers.get("X-Amz-Target", ""), body)
        else:
            action, resources = dynamodb_action_resources(req.headers.get("X-Amz-Target", ""), body, region)
        if access_key == self.admin_key:
            return self.forward(req, service, body)
        session = role_of_session(access_key, req.headers.get("X-Amz-Security-Token"))
        if session is None:
            return self.refuse(service, 403, "InvalidAccessKeyId",
                               f"The AWS access key id {access_key} is not a session of a role of this stack")
        role_arn, session_arn = session
        role = role_arn.rsplit("/", 1)[1]
        for resource in resources:
            allowed = allowed_for_request(req.headers, req.method, req.path, action, resource)
            self.decisions.add({"role": role, "action": action, "resource": resource, "allowed": allowed,
                                "via": "request"})
            if not allowed:
                return self.refuse(service, 403 if service == "s3" else 400,
                                   "AccessDenied" if service == "s3" else "AccessDeniedException",
                                   denied_message(session_arn, action, resource))
        resp = self.forward(req, service, body)
        if service == "s3" and resp.status_code == 404 and key and action == "s3:GetObject":
            bucket_arn = f"arn:aws:s3:::{bucket}"
            may_list = allowed_for_request(req.headers, "GET", f"/{bucket}", "s3:ListBucket", bucket_arn)
            self.decisions.add({"role": role, "action": "s3:ListBucket", "resource": bucket_arn,
                                "allowed": may_list, "via": "absent-key"})
            if not may_list:
                return self.refuse("s3", 403, "AccessDenied", denied_message(session_arn, "s3:ListBucket", bucket_arn))
        return resp

    def forward(self, req, service, body):
        up = self.upstreams[service]
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=900)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = req.host
        headers["Content-Length"] = str(len(body))
        # The path exactly as the client sent it (its percent-encoding is part of the key).
        target = req.environ.get("RAW_URI") or req.environ.get("REQUEST_URI") or req.full_path
        try:
            conn.request(req.method, target, body=body, headers=headers)
            up_resp = conn.getresponse()
            data = up_resp.read()
            out = [(k, v) for k, v in up_resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
            return Response(data, status=up_resp.status, headers=out)
        finally:
            conn.close()

    @staticmethod
    def error_json(status, code, message):
        return Response(json.dumps({"__type": code, "message": message}), status=status,
                        mimetype="application/x-amz-json-1.0")

    def refuse(self, service, status, code, message):
        if service == "s3":
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                   f"<Message>{message}</Message><RequestId>local</RequestId></Error>")
            return Response(xml, status=status, mimetype="application/xml")
        if service == "states":
            return self.error_json(status, code, message)
        return self.error_json(status, f"com.amazonaws.dynamodb.v20120810#{code}", message)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="host:port")
    ap.add_argument("--s3-upstream", required=True, help="LocalStack gateway URL (S3 and Step Functions)")
    ap.add_argument("--dynamodb-upstream", required=True, help="moto server URL")
    ap.add_argument("--admin-key", default="test", help="access key id that is not checked")
    ap.add_argument("--log", help="append every decision to this JSON-lines file")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    app = Gateway(args.s3_upstream, args.dynamodb_upstream, args.admin_key, Decisions(args.log))
    server = make_server(host, int(port), app, threaded=True)
    print(f"iam gateway on {args.listen}: s3 -> {args.s3_upstream}, dynamodb -> {args.dynamodb_upstream}",
          file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
