//! The IAM review as a test: reads `infra/template.yaml` (CloudFormation short tags such as `!Ref`,
//! `!Sub` and `!GetAtt` are kept as tagged values) and fails, naming the resource and statement,
//! when a policy grants more than the pipeline needs:
//!
//! - no Allow statement with an action wildcard (`*`, `s3:*`, `s3:Get*`);
//! - `Resource: "*"` only for the actions AWS offers no resource-level permission for (vended log
//!   delivery, X-Ray);
//! - S3 actions only on the data bucket: `s3:ListBucket` on the bucket ARN, object actions under
//!   its `raw/`, `runs/` or `models/` prefixes;
//! - DynamoDB actions only on the score table;
//! - the bucket encrypts at rest, blocks public access, and denies requests without TLS;
//! - resource policies (the alert topic's, the dead-letter queue's) grant only AWS services, each
//!   scoped by `aws:SourceArn` or `aws:SourceAccount` (no confused deputy), and a KMS key policy
//!   gives services only `kms:GenerateDataKey*` / `kms:Decrypt`, scoped the same way (EventBridge's
//!   grant excepted: its KMS requests carry no source keys).
//!
//! A second test scans every tracked text file (`git ls-files`) for AWS account ids (12-digit
//! numbers; AWS's documentation placeholder `123456789012` excepted) and secret-looking strings.

use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// Actions that take no resource-level permissions, so AWS requires `Resource: "*"` for them.
const STAR_RESOURCE_ACTIONS: &[&str] = &[
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
];

const BUCKET: &str = "DataBucket";
const TABLE: &str = "ScoreTable";
const S3_PREFIXES: &[&str] = &["raw/*", "runs/*", "models/*"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_template() -> Value {
    let path = repo_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A scalar, or an intrinsic as the text CloudFormation resolves it to: `!Sub "${B.Arn}/x"` is
/// `${B.Arn}/x`, `!GetAtt B.Arn` and `!Ref B` are `${B.Arn}` and `${B}`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => {
            let inner = text(&t.value);
            match t.tag.to_string().trim_start_matches('!') {
                "Sub" => inner,
                "GetAtt" | "Ref" => format!("${{{inner}}}"),
                other => format!("!{other} {inner}"),
            }
        }
        Value::Mapping(m) => {
            // Long forms: { Ref: X }, { "Fn::GetAtt": [X, Arn] }, { "Fn::Sub": "..." }.
            if let Some(r) = m.get("Ref") {
                return format!("${{{}}}", text(r));
            }
            if let Some(Value::Sequence(parts)) = m.get("Fn::GetAtt") {
                return format!("${{{}}}", parts.iter().map(text).collect::<Vec<_>>().join("."));
            }
            if let Some(s) = m.get("Fn::Sub") {
                return text(s);
            }
            format!("{v:?}")
        }
        other => format!("{other:?}"),
    }
}

/// A string or a list of strings (Action, Resource).
fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().map(text).collect(),
        Some(other) => vec![text(other)],
    }
}

/// Every policy statement of a template: (where, statement), `where` naming the resource and the
/// statement's position (or Sid).
fn statements(template: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(Value::Mapping(resources)) = template.get("Resources") else { panic!("template has no Resources") };
    for (name, res) in resources {
        let name = text(name);
        let props = res.get("Properties");
        let mut docs: Vec<(String, &Value)> = Vec::new();
        // SAM functions and state machines: Policies is a list of statement blocks and policy templates.
        if let Some(Value::Sequence(policies)) = props.and_then(|p| p.get("Policies")) {
            for (i, p) in policies.iter().enumerate() {
                if let Some(s) = p.get("Statement") {
                    docs.push((format!("Policies[{i}]"), s));
                }
            }
        }
        // IAM roles and policies: PolicyDocument / Policies[].PolicyDocument.
        if let Some(doc) = props.and_then(|p| p.get("PolicyDocument")).and_then(|d| d.get("Statement")) {
            docs.push(("PolicyDocument".into(), doc));
        }
        for (where_, doc) in docs {
            let items: Vec<&Value> = match doc {
                Value::Sequence(s) => s.iter().collect(),
                other => vec![other],
            };
            for (j, st) in items.into_iter().enumerate() {
                let sid = st.get("Sid").map(text).map(|s| format!(" (Sid {s})")).unwrap_or_default();
                out.push((format!("{name}: {where_}.Statement[{j}]{sid}"), st.clone()));
            }
        }
    }
    out
}

/// Problems of the template's policies and bucket, one line each, naming resource and statement.
fn review(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let bucket_arn = format!("${{{BUCKET}.Arn}}");
    let table_arn = format!("${{{TABLE}.Arn}}");
    let object_arns: Vec<String> = S3_PREFIXES.iter().map(|p| format!("{bucket_arn}/{p}")).collect();
    for (at, st) in statements(template) {
        if st.get("Effect").map(text).as_deref() != Some("Allow") {
            continue;
        }
        if st.get("NotAction").is_some() || st.get("NotResource").is_some() {
            problems.push(format!("{at}: Allow with NotAction/NotResource grants everything else"));
        }
        let actions = list(st.get("Action"));
        let resources = list(st.get("Resource"));
        for a in &actions {
            if a.contains('*') {
                problems.push(format!("{at}: action wildcard `{a}` (name each action)"));
            }
        }
        if resources.iter().any(|r| r == "*") {
            for a in actions.iter().filter(|a| !STAR_RESOURCE_ACTIONS.contains(&a.as_str())) {
                problems.push(format!("{at}: `{a}` on Resource \"*\" (only {STAR_RESOURCE_ACTIONS:?} may use it)"));
            }
        }
        for a in &actions {
            let service = a.split(':').next().unwrap_or_default();
            for r in resources.iter().filter(|r| *r != "*") {
                let bucket_action =
                    matches!(a.as_str(), "s3:ListBucket" | "s3:ListBucketMultipartUploads" | "s3:GetBucketLocation");
                let problem = match service {
                    "s3" if bucket_action && *r != bucket_arn => {
                        Some(format!("{at}: bucket action `{a}` on `{r}`, not the data bucket ({bucket_arn})"))
                    }
                    // A prefix's objects, or a narrower pattern inside one (models/*/champion.json).
                    "s3" if !bucket_action && !object_arns.iter().any(|p| r.starts_with(p.trim_end_matches('*'))) => {
                        Some(format!("{at}: `{a}` on `{r}`: S3 object access is limited to {object_arns:?}"))
                    }
                    "dynamodb" if *r != table_arn && *r != format!("{table_arn}/index/*") => Some(format!(
                        "{at}: `{a}` on `{r}`: DynamoDB access is limited to the score table ({table_arn})"
                    )),
                    _ => None,
                };
                problems.extend(problem);
            }
        }
    }
    problems.extend(review_bucket(template));
    problems.extend(review_resource_policies(template));
    problems
}

/// The condition keys that tie a service principal's grant to this account or resource.
fn scoped(st: &Value) -> bool {
    let Some(Value::Mapping(ops)) = st.get("Condition") else { return false };
    ops.values().any(|keys| {
        keys.as_mapping()
            .is_some_and(|k| k.keys().any(|k| matches!(text(k).as_str(), "aws:SourceArn" | "aws:SourceAccount")))
    })
}

fn review_resource_policies(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(Value::Mapping(resources)) = template.get("Resources") else { return problems };
    for (name, res) in resources {
        let name = text(name);
        let kind = res.get("Type").map(text).unwrap_or_default();
        let props = res.get("Properties");
        let (doc, key_policy) = match kind.as_str() {
            "AWS::SNS::TopicPolicy" | "AWS::SQS::QueuePolicy" => (props.and_then(|p| p.get("PolicyDocument")), false),
            "AWS::KMS::Key" => (props.and_then(|p| p.get("KeyPolicy")), true),
            _ => continue,
        };
        let statements: Vec<&Value> = match doc.and_then(|d| d.get("Statement")) {
            Some(Value::Sequence(s)) => s.iter().collect(),
            Some(other) => vec![other],
            None => Vec::new(),
        };
        for (j, st) in statements.into_iter().enumerate() {
            if st.get("Effect").map(text).as_deref() != Some("Allow") {
                continue;
            }
            let at = format!("{name}: Statement[{j}]");
            let principal = st.get("Principal");
            let services = list(principal.and_then(|p| p.get("Service")));
            let aws = list(principal.and_then(|p| p.get("AWS")));
            let root = aws.len() == 1 && aws[0].ends_with(":root");
            if services.is_empty() && !(key_policy && root) {
                problems.push(format!("{at}: grants {principal:?}, not an AWS service principal"));
                continue;
            }
            if services.is_empty() {
                continue; // the key's own account administers it (the default key policy)
            }
            if !aws.is_empty() {
                problems.push(format!("{at}: mixes service and account principals"));
            }
            // EventBridge's KMS requests for an encrypted SNS target carry no source keys (a condition
            // on them would drop every message): its key grant is the one allowed without.
            let eventbridge_key_grant = key_policy && services == ["events.amazonaws.com"];
            if !scoped(st) && !eventbridge_key_grant {
                problems.push(format!("{at}: service grant without an aws:SourceArn / aws:SourceAccount condition"));
            }
            if key_policy {
                for a in list(st.get("Action")) {
                    if !matches!(a.as_str(), "kms:GenerateDataKey*" | "kms:Decrypt") {
                        problems.push(format!("{at}: services may only use the key to encrypt for it, not `{a}`"));
                    }
                }
            }
        }
    }
    problems
}

fn review_bucket(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let resources = template.get("Resources").expect("Resources");
    let Some(bucket) = resources.get(BUCKET) else { return vec![format!("no {BUCKET} resource")] };
    let props = bucket.get("Properties");
    let sse = props
        .and_then(|p| p.get("BucketEncryption"))
        .and_then(|e| e.get("ServerSideEncryptionConfiguration"))
        .and_then(|c| c.get(0))
        .and_then(|r| r.get("ServerSideEncryptionByDefault"))
        .and_then(|d| d.get("SSEAlgorithm"))
        .map(text);
    if !matches!(sse.as_deref(), Some("AES256" | "aws:kms" | "aws:kms:dsse")) {
        problems.push(format!("{BUCKET}: no default server-side encryption (SSEAlgorithm: {sse:?})"));
    }
    let block = props.and_then(|p| p.get("PublicAccessBlockConfiguration"));
    for flag in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        if block.and_then(|b| b.get(flag)) != Some(&Value::Bool(true)) {
            problems.push(format!("{BUCKET}: PublicAccessBlockConfiguration.{flag} is not true"));
        }
    }
    // A bucket policy on this bucket that denies any request without TLS, on the bucket and its objects.
    let Some(Value::Mapping(all)) = Some(resources) else { unreachable!() };
    let tls_deny = all.iter().any(|(_, r)| {
        r.get("Type").map(text).as_deref() == Some("AWS::S3::BucketPolicy")
            && r.get("Properties").and_then(|p| p.get("Bucket")).map(text) == Some(format!("${{{BUCKET}}}"))
            && r.get("Properties")
                .and_then(|p| p.get("PolicyDocument"))
                .and_then(|d| d.get("Statement"))
                .and_then(Value::as_sequence)
                .is_some_and(|sts| {
                    sts.iter().any(|st| {
                        let resources = list(st.get("Resource"));
                        st.get("Effect").map(text).as_deref() == Some("Deny")
                            && list(st.get("Action")).iter().any(|a| a == "s3:*")
                            && st.get("Principal").map(text).as_deref() == Some("*")
                            && resources.contains(&format!("${{{BUCKET}.Arn}}"))
                            && resources.contains(&format!("${{{BUCKET}.Arn}}/*"))
                            && st
                                .get("Condition")
                                .and_then(|c| c.get("Bool"))
                                .and_then(|b| b.get("aws:SecureTransport"))
                                .map(text)
                                .as_deref()
                                == Some("false")
                    })
                })
    });
    if !tls_deny {
        problems.push(format!(
            "{BUCKET}: no bucket policy denying s3:* without TLS (Deny, Principal \"*\", Condition Bool aws:SecureTransport \"false\", on the bucket and its objects)"
        ));
    }
    problems
}

#[test]
fn iam_policies_are_least_privilege_and_the_bucket_is_locked_down() {
    let template = load_template();
    let n = statements(&template).len();
    assert!(n >= 15, "only {n} policy statements found: is the template parsed right?");
    let problems = review(&template);
    assert!(problems.is_empty(), "IAM review of infra/template.yaml failed:\n  {}", problems.join("\n  "));
}

/// The review catches what it claims to: a template with each kind of mistake fails, and the
/// message names the function and statement.
#[test]
fn the_review_names_the_function_and_statement_at_fault() {
    let bad = r#"
Resources:
  DataBucket:
    Type: AWS::S3::Bucket
    Properties: {}
  LooseFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: "s3:*"
              Resource: !Sub "${DataBucket.Arn}/runs/*"
            - Sid: Everything
              Effect: Allow
              Action: [dynamodb:PutItem]
              Resource: "*"
            - Effect: Allow
              Action: s3:GetObject
              Resource: !Sub "${DataBucket.Arn}/*"
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !GetAtt OtherTable.Arn
            - Effect: Allow
              Action: xray:PutTraceSegments
              Resource: "*"
  OpenTopicPolicy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Topic]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: "*"
            Action: sns:Publish
            Resource: !Ref Topic
          - Effect: Allow
            Principal: {Service: events.amazonaws.com}
            Action: sns:Publish
            Resource: !Ref Topic
  LooseKey:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Statement:
          - Effect: Allow
            Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
            Action: "kms:*"
            Resource: "*"
          - Effect: Allow
            Principal: {Service: cloudwatch.amazonaws.com}
            Action: ["kms:Decrypt", "kms:CreateGrant"]
            Resource: "*"
            Condition: {StringEquals: {"aws:SourceAccount": !Ref AWS::AccountId}}
"#;
    let problems = review(&serde_yaml::from_str(bad).unwrap());
    let has = |s: &str| problems.iter().any(|p| p.contains(s));
    assert!(has("LooseFunction: Policies[0].Statement[0]: action wildcard `s3:*`"), "{problems:#?}");
    assert!(
        has("LooseFunction: Policies[0].Statement[1] (Sid Everything): `dynamodb:PutItem` on Resource \"*\""),
        "{problems:#?}"
    );
    assert!(has("LooseFunction: Policies[0].Statement[2]: `s3:GetObject` on `${DataBucket.Arn}/*`"), "{problems:#?}");
    assert!(has("LooseFunction: Policies[0].Statement[3]: `dynamodb:Query` on `${OtherTable.Arn}`"), "{problems:#?}");
    assert!(!has("Statement[4]"), "X-Ray may use Resource \"*\": {problems:#?}");
    assert!(has("DataBucket: no default server-side encryption"), "{problems:#?}");
    assert!(has("PublicAccessBlockConfiguration.BlockPublicAcls"), "{problems:#?}");
    assert!(has("no bucket policy denying s3:* without TLS"), "{problems:#?}");
    assert!(has("OpenTopicPolicy: Statement[0]: grants"), "{problems:#?}");
    assert!(has("OpenTopicPolicy: Statement[1]: service grant without an aws:SourceArn"), "{problems:#?}");
    assert!(!has("LooseKey: Statement[0]"), "the account administers its key: {problems:#?}");
    assert!(has("LooseKey: Statement[1]: services may only use the key to encrypt for it, not `kms:CreateGrant`"), "{problems:#?}");
}

/// Where `text` has an AWS account id or something that looks like a credential.
fn secret_findings(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        // 12-digit numbers standing alone (not part of a longer number, a word, or a decimal fraction).
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                let start = j;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                let before = start.checked_sub(1).map(|k| bytes[k]);
                let after = bytes.get(j).copied();
                let word = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
                let digits = &line[start..j];
                if j - start == 12
                    && !word(before)
                    && !word(after)
                    && before != Some(b'.')
                    && !matches!(digits, "123456789012" | "000000000000")
                {
                    out.push((i + 1, format!("12-digit number `{digits}` (an AWS account id?)")));
                }
            } else {
                j += 1;
            }
        }
        // AWS access key ids.
        for prefix in ["AKIA", "ASIA"] {
            for (k, _) in line.match_indices(prefix) {
                let id = &line[k..];
                if id.len() >= 20 && id[..20].bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                    out.push((i + 1, format!("AWS access key id `{}…`", &id[..8])));
                }
            }
        }
        if line.contains(concat!("PRIVATE KEY", "-----")) {
            out.push((i + 1, "a private key".into()));
        }
        // A secret access key or token value: 40+ base64 characters after the name.
        let lower = line.to_ascii_lowercase();
        for name in ["aws_secret_access_key", "secret_access_key", "aws_session_token"] {
            if let Some(k) = lower.find(name) {
                let value: String = line[k + name.len()..]
                    .trim_start_matches(['"', '\'', ' ', '=', ':'])
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "/+=".contains(*c))
                    .collect();
                if value.len() >= 40 {
                    out.push((i + 1, format!("`{name}` with a {}-character value", value.len())));
                    break;
                }
            }
        }
        // (Spelt in two parts so this file does not match itself.)
        for (a, b) in [("ghp", "_"), ("github", "_pat_"), ("xoxb", "-"), ("xoxp", "-"), ("sk_live", "_")] {
            let token = format!("{a}{b}");
            if line.contains(&token) {
                out.push((i + 1, format!("a `{token}` token")));
            }
        }
    }
    out
}

#[test]
fn no_account_ids_or_secrets_in_tracked_files() {
    let root = repo_root();
    let listed = std::process::Command::new("git").arg("-C").arg(&root).args(["ls-files", "-z"]).output();
    let files = match listed {
        Ok(out) if out.status.success() => out.stdout,
        _ => {
            // Outside a git checkout (a source tarball) there is no list of tracked files; CI
            // always has one, and there the check must run.
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(!ci, "{} is not a git checkout (git ls-files failed), and CI requires this check", root.display());
            eprintln!("skipped: {} is not a git checkout (git ls-files failed)", root.display());
            return;
        }
    };
    let mut findings = Vec::new();
    let mut scanned = 0;
    for name in files.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).to_string();
        let Ok(bytes) = std::fs::read(root.join(&name)) else { continue };
        // Text files only (binary files have NUL bytes or are not UTF-8).
        let Ok(text) = String::from_utf8(bytes) else { continue };
        if text.contains('\0') {
            continue;
        }
        scanned += 1;
        findings.extend(secret_findings(&text).into_iter().map(|(line, what)| format!("{name}:{line}: {what}")));
    }
    assert!(scanned > 50, "only {scanned} tracked text files scanned");
    assert!(
        findings.is_empty(),
        "tracked files hold what looks like an account id or a secret:\n  {}",
        findings.join("\n  ")
    );
}

#[test]
fn the_scan_finds_account_ids_and_keys() {
    // Built at run time so this file does not match itself.
    let account = concat!("2109876", "54321");
    let key_id = format!("AKIA{}", "IOSFODNN7EXAMPLE");
    let secret = format!("wJalrXUtnFEMI/K7MDENG/{}", "bPxRfiCYEXAMPLEKEY");
    let text = format!(
        "arn:aws:iam::{account}:role/x\nkey = {key_id}\nok 123456789012 1.123456789012 2025-01-01\n\
         aws_secret_access_key = {secret}\naws_secret_access_key=\"test\"\n"
    );
    let found = secret_findings(&text);
    let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [1, 2, 4], "{found:?}");
    assert!(found[0].1.contains(account));
}
