//! infra/template.yaml, statemachines/pipeline.asl.json and functions/ agree (no network):
//! every ASL substitution is defined, every template function has a crate with that binary,
//! every Ref/GetAtt/Sub (IAM statements included) names something that exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn template() -> Value {
    let path = root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn asl_text() -> String {
    std::fs::read_to_string(root().join("statemachines/pipeline.asl.json")).expect("statemachines/pipeline.asl.json")
}

fn resources(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

fn of_type<'a>(res: &'a BTreeMap<String, Value>, ty: &str) -> Vec<(&'a String, &'a Value)> {
    res.iter().filter(|(_, r)| r["Type"].as_str() == Some(ty)).collect()
}

/// `${Name}` / `${Name.Attr}` references of a Sub string (`${!Literal}` excluded).
fn sub_names(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else { break };
        let name = &after[..j];
        if !name.starts_with('!') {
            out.push(name.split('.').next().unwrap().to_string());
        }
        rest = &after[j + 1..];
    }
    out
}

/// Every name referenced by !Ref, !GetAtt or !Sub (short tags or long form) under `v`.
fn referenced(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            match (tag.trim_start_matches('!'), &t.value) {
                ("Ref", Value::String(s)) => out.push(s.clone()),
                ("GetAtt", Value::String(s)) => out.push(s.split('.').next().unwrap().to_string()),
                ("GetAtt", Value::Sequence(seq)) => out.extend(seq.first().and_then(Value::as_str).map(str::to_string)),
                ("Sub", Value::String(s)) => out.extend(sub_names(s)),
                ("Sub", Value::Sequence(seq)) => {
                    let local: BTreeSet<String> = seq
                        .get(1)
                        .and_then(Value::as_mapping)
                        .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                    if let Some(s) = seq.first().and_then(Value::as_str) {
                        out.extend(sub_names(s).into_iter().filter(|n| !local.contains(n)));
                    }
                    seq.iter().skip(1).for_each(|x| referenced(x, out));
                }
                (_, inner) => referenced(inner, out),
            }
        }
        Value::Mapping(m) => {
            for (k, val) in m {
                match (k.as_str(), val) {
                    (Some("Ref"), Value::String(s)) => out.push(s.clone()),
                    (Some("Fn::GetAtt"), Value::Sequence(seq)) => {
                        out.extend(seq.first().and_then(Value::as_str).map(str::to_string))
                    }
                    (Some("Fn::Sub"), Value::String(s)) => out.extend(sub_names(s)),
                    _ => referenced(val, out),
                }
            }
        }
        Value::Sequence(seq) => seq.iter().for_each(|x| referenced(x, out)),
        _ => {}
    }
}

fn known_names(t: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = resources(t).into_keys().collect();
    names
        .extend(t["Parameters"].as_mapping().into_iter().flatten().filter_map(|(k, _)| k.as_str().map(str::to_string)));
    names
}

fn is_known(name: &str, known: &BTreeSet<String>) -> bool {
    name.starts_with("AWS::") || known.contains(name)
}

#[test]
fn asl_substitutions_are_defined_by_the_template_and_all_used() {
    let t = template();
    let res = resources(&t);
    let machines = of_type(&res, "AWS::Serverless::StateMachine");
    assert_eq!(machines.len(), 1, "one state machine");
    let props = &machines[0].1["Properties"];
    assert_eq!(props["DefinitionUri"].as_str(), Some("../statemachines/pipeline.asl.json"));
    let subs: BTreeSet<String> = props["DefinitionSubstitutions"]
        .as_mapping()
        .expect("DefinitionSubstitutions")
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let used: BTreeSet<String> = sub_names(&asl_text()).into_iter().collect();
    assert!(!used.is_empty());
    assert_eq!(
        used.difference(&subs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "ASL substitutions missing from DefinitionSubstitutions"
    );
    assert_eq!(
        subs.difference(&used).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "DefinitionSubstitutions the ASL never uses"
    );
    // Each substitution is the ARN of a function of the template, or a Number parameter (used
    // unquoted in the ASL, e.g. the state machine's TimeoutSeconds).
    for (key, value) in props["DefinitionSubstitutions"].as_mapping().unwrap() {
        let mut names = Vec::new();
        referenced(value, &mut names);
        let function = names.len() == 1
            && getatt_of(value).is_some()
            && of_type(&res, "AWS::Serverless::Function").iter().any(|(n, _)| **n == names[0]);
        let number = ref_of(value).is_some_and(|p| t["Parameters"][p.as_str()]["Type"].as_str() == Some("Number"));
        assert!(function || number, "{key:?} is neither a function's ARN nor a Number parameter: {value:?}");
    }
}

#[test]
fn asl_is_valid_json_with_every_task_on_a_substituted_function() {
    let asl = asl_json(&asl_text());
    fn tasks(states: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for (name, st) in states["States"].as_object().unwrap() {
            if st["Type"] == "Task" {
                out.push((name.clone(), st["Resource"].as_str().unwrap_or_default().to_string()));
                let retried: Vec<&str> = st["Retry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
                    .filter_map(|e| e.as_str())
                    .collect();
                for e in [
                    "Lambda.ServiceException",
                    "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException",
                    "Marquee.Transient",
                ] {
                    assert!(retried.contains(&e), "task {name} does not retry {e}");
                }
            }
            if let Some(p) = st.get("ItemProcessor") {
                tasks(p, out);
            }
        }
    }
    let mut found = Vec::new();
    tasks(&asl, &mut found);
    assert_eq!(found.len(), 11, "{found:?}");
    for (name, resource) in found {
        assert!(resource.starts_with("${") && resource.ends_with("FunctionArn}"), "task {name} calls {resource}");
    }
}

fn crate_binaries(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("name")?.as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_template_function_has_a_crate_with_its_binary_and_vice_versa() {
    let t = template();
    let res = resources(&t);
    let mut in_template = BTreeSet::new();
    for (name, f) in of_type(&res, "AWS::Serverless::Function") {
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no BuildProperties.Binary"));
        let dir = root().join("functions").join(binary);
        assert!(
            crate_binaries(&dir).contains(&binary.to_string()),
            "{name}: functions/{binary} has no [[bin]] {binary}"
        );
        let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
        // `serve("x", handlers::x)`, or a closure handing handler x what only the runtime has.
        assert!(
            main.contains(&format!("serve(\"{binary}\", ")) && main.contains(&format!("marquee_lambda::handlers::{binary}")),
            "functions/{binary}/src/main.rs serves another step"
        );
        in_template.insert(binary.to_string());
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists() && !crate_binaries(&e.path()).is_empty())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(in_template, on_disk, "function crates and template functions differ");
}

#[test]
fn every_reference_names_a_resource_or_parameter() {
    let t = template();
    let known = known_names(&t);
    let mut names = Vec::new();
    referenced(&t["Resources"], &mut names);
    referenced(&t["Outputs"], &mut names);
    referenced(&t["Globals"], &mut names);
    let unknown: Vec<_> = names.iter().filter(|n| !is_known(n, &known)).collect();
    assert!(unknown.is_empty(), "references to nothing: {unknown:?}");
}

#[test]
fn every_iam_statement_names_real_resources() {
    let t = template();
    let res = resources(&t);
    let known = known_names(&t);
    let mut checked = 0;
    for (name, r) in &res {
        let Some(policies) = r["Properties"]["Policies"].as_sequence() else { continue };
        for policy in policies {
            if let Some(statements) = policy["Statement"].as_sequence() {
                for st in statements {
                    let actions: Vec<String> = match &st["Action"] {
                        Value::String(s) => vec![s.clone()],
                        Value::Sequence(seq) => seq.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
                        other => panic!("{name}: Action {other:?}"),
                    };
                    let resources = match &st["Resource"] {
                        Value::Sequence(seq) => seq.clone(),
                        other => vec![other.clone()],
                    };
                    for resource in resources {
                        if resource.as_str() == Some("*") {
                            // Only services without resource-level permissions may use "*".
                            assert!(
                                actions.iter().all(|a| a.starts_with("logs:") || a.starts_with("xray:")),
                                "{name}: {actions:?} on *"
                            );
                            continue;
                        }
                        let mut refs = Vec::new();
                        referenced(&resource, &mut refs);
                        assert!(
                            !refs.is_empty(),
                            "{name}: statement resource {resource:?} is not a Ref/GetAtt/Sub of a template resource"
                        );
                        // Pseudo parameters (AWS::Partition, AWS::StackName...) name the account and
                        // the stack, e.g. the executions of the named state machine.
                        for r in refs.into_iter().filter(|r| !r.starts_with("AWS::")) {
                            assert!(
                                res.contains_key(&r),
                                "{name}: statement names `{r}`, not a resource of the template"
                            );
                        }
                        checked += 1;
                    }
                }
            } else {
                // A SAM policy template, e.g. LambdaInvokePolicy: {FunctionName: !Ref X}.
                let mut refs = Vec::new();
                referenced(policy, &mut refs);
                assert!(
                    !refs.is_empty() && refs.iter().all(|r| is_known(r, &known) && res.contains_key(r)),
                    "{name}: policy template {policy:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} statements checked");
}

#[test]
fn data_access_is_least_privilege_per_function() {
    let t = template();
    let res = resources(&t);
    let s3_prefixes = |fn_name: &str, action: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for policy in res[fn_name]["Properties"]["Policies"].as_sequence().unwrap() {
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                let acts = serde_yaml::to_string(&st["Action"]).unwrap();
                if acts.contains(action) {
                    if let Value::Tagged(t) = &st["Resource"] {
                        if let (Some(s), true) = (t.value.as_str(), t.tag.to_string().trim_start_matches('!') == "Sub")
                        {
                            out.extend(s.split_once("Arn}/").map(|(_, p)| p.trim_end_matches('*').to_string()));
                        }
                    }
                }
            }
        }
        out
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // Ingest reads the champions' fingerprints (the unchanged check) and repairs a lagging pointer.
    assert_eq!(s3_prefixes("IngestFunction", "s3:GetObject"), set(&["raw/", "models/"]));
    assert_eq!(s3_prefixes("IngestFunction", "s3:PutObject"), set(&["runs/", "models/*/champion.json"]));
    assert_eq!(s3_prefixes("DeployFunction", "s3:PutObject"), set(&["models/"]));
    assert_eq!(s3_prefixes("RejectFunction", "s3:PutObject"), set(&[]));
    assert_eq!(s3_prefixes("SummarizeFunction", "s3:GetObject"), set(&[]));
    // Evaluate writes runs/ only (it reads the champion; ingest repaired a lagging pointer).
    assert_eq!(s3_prefixes("EvaluateFunction", "s3:PutObject"), set(&["runs/"]));
    // Deploy reads models/ back when it lost the champion race (to re-publish the winner's scores).
    assert_eq!(s3_prefixes("DeployFunction", "s3:GetObject"), set(&["runs/", "models/"]));

    // The score table: Deploy and Reject write it; Ingest and Evaluate read the champion item (the
    // authority on who is champion); Normalize claims the trigger and holds the dataset
    // (conditional puts, and reading who holds them); no other function touches it. (Which statement each call needs is proven
    // on the local stack with IAM enforced: tests/local-aws/least_privilege.py.)
    let table_actions = |fn_name: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for policy in res[fn_name]["Properties"]["Policies"].as_sequence().unwrap() {
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                let actions = match &st["Action"] {
                    Value::String(a) => vec![a.clone()],
                    Value::Sequence(v) => v.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
                    _ => vec![],
                };
                out.extend(actions.into_iter().filter(|a| a.starts_with("dynamodb:")));
            }
        }
        out
    };
    assert_eq!(table_actions("EvaluateFunction"), set(&["dynamodb:GetItem"]));
    assert_eq!(table_actions("IngestFunction"), set(&["dynamodb:GetItem"]));
    assert_eq!(table_actions("NormalizeFunction"), set(&["dynamodb:GetItem", "dynamodb:PutItem"]));
    assert_eq!(
        table_actions("DeployFunction"),
        set(&["dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem"])
    );
    assert_eq!(table_actions("RejectFunction"), set(&["dynamodb:BatchWriteItem"]));
    for (name, _) in of_type(&res, "AWS::Serverless::Function") {
        if !["NormalizeFunction", "IngestFunction", "EvaluateFunction", "DeployFunction", "RejectFunction"]
            .contains(&name.as_str())
        {
            assert_eq!(table_actions(name), set(&[]), "{name} has no business with the score table");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Production operations (docs/aws.md, "Operating it"): timeouts, data kept safe, failures reach
// someone. Each property is one check over the parsed template / ASL, run by its own test; and
// `each_operations_check_fails_without_its_property` removes each property from a copy and
// proves its check then fails.

/// The ASL as JSON: quoted `"${X}"` substitutions stay as they are, unquoted (numeric) ones such as
/// `"TimeoutSeconds": ${ExecutionTimeout}` become the string `"${ExecutionTimeout}"`.
fn asl_json(text: &str) -> serde_json::Value {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let quoted = rest[..i].ends_with('"');
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').expect("closing }") + i;
        if quoted {
            out.push_str(&rest[i..=j]);
        } else {
            out.push('"');
            out.push_str(&rest[i..=j]);
            out.push('"');
        }
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).expect("ASL is JSON once numbers are substituted")
}

/// The name `!Ref X` / `{Ref: X}` names.
fn ref_of(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "Ref" => t.value.as_str().map(str::to_string),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The resource `!GetAtt X.Arn` names.
fn getatt_of(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "GetAtt" => {
            t.value.as_str().map(|s| s.split('.').next().unwrap().to_string())
        }
        _ => None,
    }
}

/// The text of `!Sub "..."` (or a plain string).
fn sub_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "Sub" => t.value.as_str().map(str::to_string),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn function_names(t: &Value) -> Vec<String> {
    of_type(&resources(t), "AWS::Serverless::Function").into_iter().map(|(n, _)| n.clone()).collect()
}

fn state_machine(t: &Value) -> String {
    of_type(&resources(t), "AWS::Serverless::StateMachine")[0].0.clone()
}

type Check = fn(&Value, &serde_json::Value) -> Result<(), String>;

/// Every Task state (Map item processors included): (name, state).
fn asl_tasks(states: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    for (name, st) in states["States"].as_object().unwrap() {
        if st["Type"] == "Task" {
            out.push((name.clone(), st.clone()));
        }
        if let Some(p) = st.get("ItemProcessor") {
            asl_tasks(p, out);
        }
    }
}

fn check_task_timeouts(t: &Value, asl: &serde_json::Value) -> Result<(), String> {
    let sm = state_machine(t);
    let subs = &t["Resources"][sm.as_str()]["Properties"]["DefinitionSubstitutions"];
    let mut tasks = Vec::new();
    asl_tasks(asl, &mut tasks);
    for (name, st) in tasks {
        let key = st["Resource"].as_str().unwrap_or_default().trim_start_matches("${").trim_end_matches('}').to_string();
        let function = getatt_of(&subs[key.as_str()]).ok_or(format!("task {name}: {key} is not a function ARN"))?;
        let param = ref_of(&t["Resources"][function.as_str()]["Properties"]["Timeout"])
            .ok_or(format!("{function}: Timeout is not a parameter"))?;
        // The largest timeout the parameter allows (and its default): no override can pass the task's.
        let p = &t["Parameters"][param.as_str()];
        let most = number(&p["MaxValue"]).ok_or(format!("{param} has no MaxValue"))?.max(number(&p["Default"]).unwrap());
        let task = st["TimeoutSeconds"].as_f64().ok_or(format!("task {name} has no TimeoutSeconds"))?;
        if task < most {
            return Err(format!("task {name}: TimeoutSeconds {task} < {function}'s {param} (up to {most})"));
        }
    }
    Ok(())
}

fn check_execution_timeout(t: &Value, asl: &serde_json::Value) -> Result<(), String> {
    let sm = state_machine(t);
    // Top level: "TimeoutSeconds": ${X}, X substituted from a Number parameter with a default.
    let top = asl["TimeoutSeconds"]
        .as_str()
        .and_then(|s| s.strip_prefix("${")?.strip_suffix('}'))
        .ok_or("the state machine has no top-level TimeoutSeconds substitution")?;
    let param = ref_of(&t["Resources"][sm.as_str()]["Properties"]["DefinitionSubstitutions"][top])
        .ok_or(format!("DefinitionSubstitutions.{top} is not a parameter"))?;
    let p = &t["Parameters"][param.as_str()];
    match (p["Type"].as_str(), number(&p["Default"]), number(&p["MinValue"])) {
        (Some("Number"), Some(d), Some(min)) if d >= 3600.0 && min >= 960.0 => Ok(()),
        other => Err(format!("{param}: not a Number parameter with a default of hours and MinValue >= 960: {other:?}")),
    }
}

fn check_bucket_versioning(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let v = &t["Resources"]["DataBucket"]["Properties"]["VersioningConfiguration"]["Status"];
    (v.as_str() == Some("Enabled")).then_some(()).ok_or(format!("DataBucket versioning: {v:?}"))
}

fn check_retained(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    for r in ["DataBucket", "ScoreTable"] {
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            if t["Resources"][r][policy].as_str() != Some("Retain") {
                return Err(format!("{r}: {policy} is not Retain"));
            }
        }
    }
    Ok(())
}

fn check_table_deletion_protection(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    (t["Resources"]["ScoreTable"]["Properties"]["DeletionProtectionEnabled"] == Value::Bool(true))
        .then_some(())
        .ok_or("ScoreTable: DeletionProtectionEnabled is not true".into())
}

fn lifecycle_rules(t: &Value) -> Vec<Value> {
    t["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
}

fn number_param(t: &Value, v: &Value) -> Option<String> {
    ref_of(v).filter(|p| t["Parameters"][p.as_str()]["Type"].as_str() == Some("Number"))
}

fn check_lifecycle(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let rules = lifecycle_rules(t);
    let enabled = |r: &&Value| r["Status"].as_str() == Some("Enabled");
    // runs/ expires after a parameter's days; nothing else (models/ above all) ever expires.
    let expiring: Vec<&Value> = rules.iter().filter(enabled).filter(|r| !r["ExpirationInDays"].is_null()).collect();
    if expiring.len() != 1
        || expiring[0]["Prefix"].as_str() != Some("runs/")
        || number_param(t, &expiring[0]["ExpirationInDays"]).is_none()
    {
        return Err(format!("want one rule expiring Prefix runs/ after a Number parameter's days, got {expiring:?}"));
    }
    if !rules.iter().filter(enabled).any(|r| number_param(t, &r["NoncurrentVersionExpiration"]["NoncurrentDays"]).is_some())
    {
        return Err("no rule expiring noncurrent versions after a Number parameter's days".into());
    }
    if !rules.iter().filter(enabled).any(|r| number(&r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]).is_some())
    {
        return Err("the abort-incomplete-multipart-uploads rule is gone".into());
    }
    Ok(())
}

fn check_log_groups(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let res = resources(t);
    let groups = of_type(&res, "AWS::Logs::LogGroup");
    let retention = |g: &Value| ref_of(&g["Properties"]["RetentionInDays"]);
    let shared = retention(&t["Resources"]["StateMachineLogGroup"]).ok_or("the state machine's log group has no retention parameter")?;
    for f in function_names(t) {
        let want = format!("/aws/lambda/${{{f}}}");
        let group = groups
            .iter()
            .find(|(_, g)| sub_text(&g["Properties"]["LogGroupName"]).as_deref() == Some(want.as_str()))
            .ok_or(format!("{f}: no AWS::Logs::LogGroup named {want}"))?;
        if retention(group.1).as_deref() != Some(shared.as_str()) {
            return Err(format!("{}: RetentionInDays is not !Ref {shared}", group.0));
        }
    }
    Ok(())
}

fn alert_topic(t: &Value) -> Result<String, String> {
    let res = resources(t);
    let topics = of_type(&res, "AWS::SNS::Topic");
    (topics.len() == 1).then(|| topics[0].0.clone()).ok_or(format!("{} SNS topics", topics.len()))
}

fn check_topic_encrypted(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let topic = alert_topic(t)?;
    let key = &t["Resources"][topic.as_str()]["Properties"]["KmsMasterKeyId"];
    // A key of the stack: EventBridge and CloudWatch cannot use the AWS managed alias/aws/sns.
    match ref_of(key).or_else(|| getatt_of(key)) {
        Some(k) if t["Resources"][k.as_str()]["Type"].as_str() == Some("AWS::KMS::Key") => Ok(()),
        _ => Err(format!("{topic}: KmsMasterKeyId {key:?} is not a KMS key of the template")),
    }
}

fn check_email_subscription(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let res = resources(t);
    let topic = alert_topic(t)?;
    let subs = of_type(&res, "AWS::SNS::Subscription");
    let ok = subs.iter().any(|(_, s)| {
        let p = &s["Properties"];
        ref_of(&p["TopicArn"]).as_deref() == Some(topic.as_str())
            && p["Protocol"].as_str() == Some("email")
            && ref_of(&p["Endpoint"]).as_deref() == Some("AlertEmail")
            && s["Condition"].as_str().is_some_and(|c| !t["Conditions"][c].is_null())
    });
    let param = &t["Parameters"]["AlertEmail"];
    (ok && param["Default"].as_str() == Some(""))
        .then_some(())
        .ok_or("no e-mail subscription of AlertEmail (default empty) under a Condition".into())
}

fn failure_rule(t: &Value) -> Result<(String, Value), String> {
    let sm = state_machine(t);
    let res = resources(t);
    of_type(&res, "AWS::Events::Rule")
        .into_iter()
        .find(|(_, r)| {
            let p = &r["Properties"]["EventPattern"];
            let status: BTreeSet<&str> =
                p["detail"]["status"].as_sequence().into_iter().flatten().filter_map(Value::as_str).collect();
            p["source"][0].as_str() == Some("aws.states")
                && p["detail-type"][0].as_str() == Some("Step Functions Execution Status Change")
                && status == BTreeSet::from(["FAILED", "TIMED_OUT", "ABORTED"])
                && p["detail"]["stateMachineArn"].as_sequence().is_some_and(|s| s.len() == 1 && ref_of(&s[0]).as_deref() == Some(sm.as_str()))
        })
        .map(|(n, r)| (n.clone(), r.clone()))
        .ok_or("no EventBridge rule on this state machine's FAILED/TIMED_OUT/ABORTED executions".into())
}

fn check_failure_rule_message(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let topic = alert_topic(t)?;
    let (name, rule) = failure_rule(t)?;
    let target = rule["Properties"]["Targets"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|x| ref_of(&x["Arn"]).as_deref() == Some(topic.as_str()))
        .ok_or(format!("{name}: no target on {topic}"))?;
    let paths = &target["InputTransformer"]["InputPathsMap"];
    let template = target["InputTransformer"]["InputTemplate"].as_str().unwrap_or_default();
    for (var, path) in [
        ("name", "$.detail.name"),
        ("status", "$.detail.status"),
        ("machine", "$.detail.stateMachineArn"),
        ("execution", "$.detail.executionArn"),
        ("error", "$.detail.error"),
        ("cause", "$.detail.cause"),
    ] {
        if paths[var].as_str() != Some(path) || !template.contains(&format!("<{var}>")) {
            return Err(format!("{name}: the message lacks <{var}> = {path}"));
        }
    }
    if !template.contains("console.aws.amazon.com/states/home") {
        return Err(format!("{name}: the message has no console link to the execution"));
    }
    Ok(())
}

/// A resource policy statement lets `service` do `action` on `resource` (the Ref/GetAtt name).
fn policy_allows(t: &Value, kind: &str, target_key: &str, resource: &str, service: &str, action: &str) -> bool {
    let res = resources(t);
    of_type(&res, kind).iter().any(|(_, p)| {
        let p = &p["Properties"];
        p[target_key].as_sequence().is_some_and(|s| s.iter().any(|x| ref_of(x).as_deref() == Some(resource)))
            && p["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten().any(|st| {
                st["Effect"].as_str() == Some("Allow")
                    && st["Principal"]["Service"].as_str() == Some(service)
                    && st["Action"].as_str() == Some(action)
                    && !st["Condition"].is_null()
            })
    })
}

fn check_topic_policy(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let topic = alert_topic(t)?;
    policy_allows(t, "AWS::SNS::TopicPolicy", "Topics", &topic, "events.amazonaws.com", "sns:Publish")
        .then_some(())
        .ok_or(format!("no topic policy letting events.amazonaws.com publish to {topic}"))
}

fn alarms(t: &Value) -> Vec<Value> {
    of_type(&resources(t), "AWS::CloudWatch::Alarm").into_iter().map(|(_, a)| a["Properties"].clone()).collect()
}

/// (namespace, metric, dimension value's Ref) of an alarm, plain or through a metric-math MetricStat.
fn alarm_metric(a: &Value) -> (String, String, Option<String>) {
    let m = if a["MetricName"].is_null() {
        a["Metrics"].as_sequence().into_iter().flatten().find_map(|m| m["MetricStat"]["Metric"].as_mapping()).cloned().map(Value::Mapping).unwrap_or(Value::Null)
    } else {
        a.clone()
    };
    let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
    (s("Namespace"), s("MetricName"), ref_of(&m["Dimensions"][0]["Value"]))
}

fn alarmed(t: &Value, namespace: &str, metric: &str, dimension: &str) -> Result<Value, String> {
    let topic = alert_topic(t)?;
    alarms(t)
        .into_iter()
        .find(|a| {
            alarm_metric(a) == (namespace.into(), metric.into(), Some(dimension.into()))
                && a["AlarmActions"].as_sequence().is_some_and(|s| s.iter().any(|x| ref_of(x).as_deref() == Some(topic.as_str())))
        })
        .ok_or(format!("no alarm on {namespace} {metric} of {dimension} telling {topic}"))
}

fn check_state_machine_alarms(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let sm = state_machine(t);
    alarmed(t, "AWS/States", "ExecutionsFailed", &sm)?;
    alarmed(t, "AWS/States", "ExecutionsTimedOut", &sm)?;
    Ok(())
}

fn check_function_alarms(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    for f in function_names(t) {
        alarmed(t, "AWS/Lambda", "Errors", &f)?;
        alarmed(t, "AWS/Lambda", "Throttles", &f)?;
        // Duration near the timeout: max/p99 duration as a share of the function's Timeout parameter.
        let d = alarmed(t, "AWS/Lambda", "Duration", &f)?;
        let param = ref_of(&t["Resources"][f.as_str()]["Properties"]["Timeout"]).unwrap();
        let stat = d["Metrics"].as_sequence().into_iter().flatten().find_map(|m| m["MetricStat"]["Stat"].as_str().map(str::to_string));
        let expr = d["Metrics"].as_sequence().into_iter().flatten().find_map(|m| sub_text(&m["Expression"]));
        let threshold = number(&d["Threshold"]).unwrap_or_default();
        let ok = matches!(stat.as_deref(), Some("Maximum" | "p99"))
            && expr.as_deref().is_some_and(|e| e.contains(&format!("${{{param}}} * 1000")) && e.starts_with("100 *"))
            && (50.0..100.0).contains(&threshold);
        if !ok {
            return Err(format!("{f}: the Duration alarm is not Maximum/p99 duration against {param} ({stat:?}, {expr:?}, {threshold})"));
        }
    }
    Ok(())
}

fn trigger_events(t: &Value) -> Vec<(String, Value)> {
    let sm = state_machine(t);
    t["Resources"][sm.as_str()]["Properties"]["Events"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

fn check_trigger_dlq(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let events = trigger_events(t);
    if events.len() < 2 {
        return Err(format!("{} trigger events", events.len()));
    }
    for (name, e) in events {
        let p = &e["Properties"];
        let queue = getatt_of(&p["DeadLetterConfig"]["Arn"]).ok_or(format!("{name}: no DeadLetterConfig.Arn"))?;
        if t["Resources"][queue.as_str()]["Type"].as_str() != Some("AWS::SQS::Queue") {
            return Err(format!("{name}: dead-letter {queue} is not an SQS queue of the template"));
        }
        let retry = &p["RetryPolicy"];
        if number(&retry["MaximumRetryAttempts"]).is_none() || number(&retry["MaximumEventAgeInSeconds"]).is_none() {
            return Err(format!("{name}: no RetryPolicy with MaximumRetryAttempts and MaximumEventAgeInSeconds"));
        }
        if !policy_allows(t, "AWS::SQS::QueuePolicy", "Queues", &queue, "events.amazonaws.com", "sqs:SendMessage") {
            return Err(format!("{name}: no queue policy lets EventBridge send to {queue}"));
        }
        // The queue policy's SourceArn names this event's rule (its explicit name).
        let rule_name = sub_text(&p["RuleName"]).or_else(|| sub_text(&p["Name"])).ok_or(format!("{name}: the rule has no Name"))?;
        let named = serde_yaml::to_string(&t["Resources"][format!("{queue}Policy").as_str()]).unwrap();
        if !named.contains(&format!("rule/{rule_name}")) {
            return Err(format!("{name}: {queue}Policy does not name rule {rule_name}"));
        }
    }
    Ok(())
}

fn check_outputs(t: &Value, _: &serde_json::Value) -> Result<(), String> {
    let topic = alert_topic(t)?;
    let outputs: Vec<String> =
        t["Outputs"].as_mapping().into_iter().flatten().filter_map(|(_, o)| ref_of(&o["Value"])).collect();
    let queue = getatt_of(&trigger_events(t).first().ok_or("no events")?.1["Properties"]["DeadLetterConfig"]["Arn"]).unwrap_or_default();
    (outputs.contains(&topic) && outputs.contains(&queue))
        .then_some(())
        .ok_or(format!("Outputs do not name {topic} and {queue}: {outputs:?}"))
}

const OPERATIONS_CHECKS: &[(&str, Check)] = &[
    ("task timeouts", check_task_timeouts),
    ("execution timeout", check_execution_timeout),
    ("bucket versioning", check_bucket_versioning),
    ("retained data", check_retained),
    ("table deletion protection", check_table_deletion_protection),
    ("lifecycle", check_lifecycle),
    ("log groups", check_log_groups),
    ("topic encrypted", check_topic_encrypted),
    ("email subscription", check_email_subscription),
    ("failure rule message", check_failure_rule_message),
    ("topic policy", check_topic_policy),
    ("state machine alarms", check_state_machine_alarms),
    ("function alarms", check_function_alarms),
    ("trigger dead-letter queue", check_trigger_dlq),
    ("outputs", check_outputs),
];

fn run_check(name: &str) {
    let (_, check) = OPERATIONS_CHECKS.iter().find(|(n, _)| *n == name).unwrap();
    if let Err(e) = check(&template(), &asl_json(&asl_text())) {
        panic!("{name}: {e}");
    }
}

#[test]
fn every_task_times_out_after_its_function() {
    run_check("task timeouts");
}
#[test]
fn the_state_machine_times_out_after_a_parameter() {
    run_check("execution timeout");
}
#[test]
fn the_bucket_is_versioned() {
    run_check("bucket versioning");
}
#[test]
fn bucket_and_table_are_retained_on_delete_and_replace() {
    run_check("retained data");
}
#[test]
fn the_table_has_deletion_protection() {
    run_check("table deletion protection");
}
#[test]
fn runs_and_old_versions_expire_models_never() {
    run_check("lifecycle");
}
#[test]
fn every_function_has_a_log_group_with_the_retention_parameter() {
    run_check("log groups");
}
#[test]
fn the_alert_topic_is_encrypted_with_a_key_publishers_may_use() {
    run_check("topic encrypted");
}
#[test]
fn alert_email_subscribes_only_when_set() {
    run_check("email subscription");
}
#[test]
fn a_failed_run_sends_a_readable_message() {
    run_check("failure rule message");
}
#[test]
fn eventbridge_may_publish_to_the_alert_topic() {
    run_check("topic policy");
}
#[test]
fn failed_and_timed_out_runs_are_alarmed() {
    run_check("state machine alarms");
}
#[test]
fn every_function_has_error_throttle_and_duration_alarms() {
    run_check("function alarms");
}
#[test]
fn triggers_retry_then_dead_letter() {
    run_check("trigger dead-letter queue");
}
#[test]
fn outputs_name_the_topic_and_the_dead_letter_queue() {
    run_check("outputs");
}

/// Each check above fails when its property is removed (a copy of the template / ASL).
#[test]
fn each_operations_check_fails_without_its_property() {
    fn props(t: &mut Value, r: &str) -> serde_yaml::Mapping {
        t["Resources"][r]["Properties"].as_mapping().unwrap().clone()
    }
    fn set_props(t: &mut Value, r: &str, m: serde_yaml::Mapping) {
        t["Resources"][r]["Properties"] = Value::Mapping(m);
    }
    fn drop_prop(t: &mut Value, r: &str, key: &str) {
        let mut m = props(t, r);
        assert!(m.remove(key).is_some(), "{r} has no {key}");
        set_props(t, r, m);
    }
    fn drop_resource(t: &mut Value, r: &str) {
        assert!(t["Resources"].as_mapping_mut().unwrap().remove(r).is_some(), "no {r}");
    }
    fn drop_rule(t: &mut Value, id: &str) {
        let rules = &mut t["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
        let seq = rules.as_sequence_mut().unwrap();
        let n = seq.len();
        seq.retain(|r| r["Id"].as_str() != Some(id));
        assert_eq!(seq.len(), n - 1, "no lifecycle rule {id}");
    }
    fn drop_event_prop(t: &mut Value, event: &str, key: &str) {
        let sm = state_machine(t);
        let p = t["Resources"][sm.as_str()]["Properties"]["Events"][event]["Properties"].as_mapping_mut().unwrap();
        assert!(p.remove(key).is_some(), "{event} has no {key}");
    }
    type Mutation = (&'static str, &'static str, Box<dyn Fn(&mut Value, &mut serde_json::Value)>);
    let mutations: Vec<Mutation> = vec![
        ("task timeouts", "a Task without TimeoutSeconds", Box::new(|_, a| {
            a["States"]["Ingest"].as_object_mut().unwrap().remove("TimeoutSeconds");
        })),
        ("task timeouts", "a Task timeout below its function's", Box::new(|_, a| {
            a["States"]["UseCases"]["ItemProcessor"]["States"]["Train"]["TimeoutSeconds"] = 600.into();
        })),
        ("execution timeout", "no top-level TimeoutSeconds", Box::new(|_, a| {
            a.as_object_mut().unwrap().remove("TimeoutSeconds");
        })),
        ("execution timeout", "a TimeoutSeconds not from a parameter", Box::new(|_, a| {
            a["TimeoutSeconds"] = 14400.into();
        })),
        ("bucket versioning", "no VersioningConfiguration", Box::new(|t, _| drop_prop(t, "DataBucket", "VersioningConfiguration"))),
        ("retained data", "bucket DeletionPolicy", Box::new(|t, _| {
            t["Resources"]["DataBucket"].as_mapping_mut().unwrap().remove("DeletionPolicy");
        })),
        ("retained data", "table UpdateReplacePolicy", Box::new(|t, _| {
            t["Resources"]["ScoreTable"].as_mapping_mut().unwrap().remove("UpdateReplacePolicy");
        })),
        ("table deletion protection", "no DeletionProtectionEnabled", Box::new(|t, _| drop_prop(t, "ScoreTable", "DeletionProtectionEnabled"))),
        ("lifecycle", "no runs/ expiration", Box::new(|t, _| drop_rule(t, "expire-runs"))),
        ("lifecycle", "no noncurrent expiration", Box::new(|t, _| drop_rule(t, "expire-noncurrent-versions"))),
        ("lifecycle", "no abort-multipart rule", Box::new(|t, _| drop_rule(t, "abort-incomplete-multipart-uploads"))),
        ("lifecycle", "models/ expiring too", Box::new(|t, _| {
            let rules = &mut t["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
            let mut r = rules[1].clone();
            r["Id"] = "expire-models".into();
            r["Prefix"] = "models/".into();
            rules.as_sequence_mut().unwrap().push(r);
        })),
        ("log groups", "a function without its log group", Box::new(|t, _| drop_resource(t, "TrainFunctionLogGroup"))),
        ("log groups", "a log group without the retention parameter", Box::new(|t, _| drop_prop(t, "DeployFunctionLogGroup", "RetentionInDays"))),
        ("topic encrypted", "no KmsMasterKeyId", Box::new(|t, _| drop_prop(t, "AlertTopic", "KmsMasterKeyId"))),
        ("topic encrypted", "the AWS managed key", Box::new(|t, _| {
            t["Resources"]["AlertTopic"]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns".into();
        })),
        ("email subscription", "no subscription", Box::new(|t, _| drop_resource(t, "AlertEmailSubscription"))),
        ("email subscription", "an unconditional subscription", Box::new(|t, _| {
            t["Resources"]["AlertEmailSubscription"].as_mapping_mut().unwrap().remove("Condition");
        })),
        ("failure rule message", "no failure rule", Box::new(|t, _| drop_resource(t, "RunFailedRule"))),
        ("failure rule message", "no InputTransformer", Box::new(|t, _| {
            t["Resources"]["RunFailedRule"]["Properties"]["Targets"][0].as_mapping_mut().unwrap().remove("InputTransformer");
        })),
        ("topic policy", "no topic policy", Box::new(|t, _| drop_resource(t, "AlertTopicPolicy"))),
        ("state machine alarms", "no ExecutionsTimedOut alarm", Box::new(|t, _| drop_resource(t, "ExecutionsTimedOutAlarm"))),
        ("function alarms", "no Throttles alarm for a function", Box::new(|t, _| drop_resource(t, "EvaluateThrottlesAlarm"))),
        ("function alarms", "an alarm without the topic", Box::new(|t, _| drop_prop(t, "IngestErrorsAlarm", "AlarmActions"))),
        ("function alarms", "no Duration alarm", Box::new(|t, _| drop_resource(t, "SummarizeDurationAlarm"))),
        ("trigger dead-letter queue", "the upload rule without a DLQ", Box::new(|t, _| drop_event_prop(t, "RawUpload", "DeadLetterConfig"))),
        ("trigger dead-letter queue", "the schedule without a RetryPolicy", Box::new(|t, _| drop_event_prop(t, "Retrain", "RetryPolicy"))),
        ("trigger dead-letter queue", "no queue policy", Box::new(|t, _| drop_resource(t, "TriggerDeadLetterQueuePolicy"))),
        ("outputs", "no DLQ output", Box::new(|t, _| {
            t["Outputs"].as_mapping_mut().unwrap().remove("TriggerDeadLetterQueueUrl");
        })),
    ];
    let (t0, a0) = (template(), asl_json(&asl_text()));
    for (name, check) in OPERATIONS_CHECKS {
        assert_eq!(check(&t0, &a0), Ok(()), "{name} holds on the real template");
        assert!(mutations.iter().any(|(n, _, _)| n == name), "no mutation for {name}");
    }
    for (name, what, mutate) in &mutations {
        let (mut t, mut a) = (t0.clone(), a0.clone());
        mutate(&mut t, &mut a);
        let (_, check) = OPERATIONS_CHECKS.iter().find(|(n, _)| n == name).unwrap();
        assert!(check(&t, &a).is_err(), "{name} still passes with {what}");
    }
}
