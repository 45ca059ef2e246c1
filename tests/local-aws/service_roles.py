"""The roles LocalStack's own services act with, for lambda_service.py (which fronts LocalStack's
port, so every request LocalStack's Step Functions and EventBridge make passes through it).

LocalStack assumes the state machine's role before invoking a function, and a rule's target role
before starting an execution, through its own STS. This records, from those AssumeRole answers,
which access key belongs to which role; invocations and StartExecution calls signed with such a
key are then decided against that role by the IAM gateway's engine (POST /_marquee/authorize), as
Lambda and Step Functions would decide them on AWS.
"""

import json
import re
import threading
import urllib.parse
import urllib.request


def access_key_of(headers):
    auth = headers.get("Authorization") or ""
    m = re.search(r"Credential=([^/,\s]+)/", auth)
    return m.group(1) if m else None


class ServiceRoles:
    def __init__(self, gateway, admin_key="test"):
        self.gateway = gateway.rstrip("/") if gateway else None
        self.admin_key = admin_key
        self.lock = threading.Lock()
        self.sessions = {}  # access key id -> (role ARN, session ARN)

    def observe(self, method, headers, body, status, payload):
        """Learns the role of each session LocalStack's STS hands out (an AssumeRole answer)."""
        if method != "POST" or status != 200 or b"AssumeRole" not in body:
            return
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action", [""])[0] != "AssumeRole" or "RoleArn" not in form:
            return
        text = payload.decode("utf-8", "replace")
        key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        arn = re.search(r"<Arn>([^<]+)</Arn>", text)
        if key:
            with self.lock:
                self.sessions[key.group(1)] = (form["RoleArn"][0], arn.group(1) if arn else form["RoleArn"][0])

    def decide(self, headers, action, resource):
        """None when the caller is the administrator (not checked); else (allowed, role ARN, session ARN).
        A key that is neither the administrator's nor a known session is refused."""
        key = access_key_of(headers)
        if key == self.admin_key or self.gateway is None:
            return None
        with self.lock:
            session = self.sessions.get(key)
        if session is None:
            return False, None, f"unknown access key {key}"
        role, session_arn = session
        req = urllib.request.Request(f"{self.gateway}/_marquee/authorize", method="POST", data=json.dumps(
            {"principal": role, "action": action, "resource": resource, "via": "service"}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)["allowed"], role, session_arn

    @staticmethod
    def denied_message(session_arn, action, resource):
        return (f"User: {session_arn} is not authorized to perform: {action} on resource: {resource} "
                f"because no identity-based policy allows the {action} action")
