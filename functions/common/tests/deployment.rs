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
    // Each substitution is the ARN of a function of the template.
    for (key, value) in props["DefinitionSubstitutions"].as_mapping().unwrap() {
        let mut names = Vec::new();
        referenced(value, &mut names);
        assert!(
            names.len() == 1 && of_type(&res, "AWS::Serverless::Function").iter().any(|(n, _)| **n == names[0]),
            "{key:?} is not a function's ARN: {value:?}"
        );
    }
}

#[test]
fn asl_is_valid_json_with_every_task_on_a_substituted_function() {
    let asl: serde_json::Value = serde_json::from_str(&asl_text()).expect("ASL is JSON");
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
    assert_eq!(found.len(), 8, "{found:?}");
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
        assert!(
            main.contains(&format!("serve(\"{binary}\", marquee_lambda::handlers::{binary})")),
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
                        for r in refs {
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
    assert_eq!(s3_prefixes("IngestFunction", "s3:GetObject"), set(&["raw/"]));
    assert_eq!(s3_prefixes("IngestFunction", "s3:PutObject"), set(&["runs/"]));
    assert_eq!(s3_prefixes("DeployFunction", "s3:PutObject"), set(&["models/"]));
    assert_eq!(s3_prefixes("RejectFunction", "s3:PutObject"), set(&[]));
    assert_eq!(s3_prefixes("SummarizeFunction", "s3:GetObject"), set(&[]));
    // Evaluate writes runs/ and, to repair a lagging pointer, only the champion pointers under models/.
    assert_eq!(s3_prefixes("EvaluateFunction", "s3:PutObject"), set(&["runs/", "models/*/champion.json"]));
    // Deploy reads models/ back when it lost the champion race (to re-publish the winner's scores).
    assert_eq!(s3_prefixes("DeployFunction", "s3:GetObject"), set(&["runs/", "models/"]));

    // The score table: Deploy and Reject write it; Evaluate reads the champion item (the authority
    // on who is champion); no other function touches it. (Which statement each call needs is proven
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
    assert_eq!(
        table_actions("DeployFunction"),
        set(&["dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem"])
    );
    assert_eq!(table_actions("RejectFunction"), set(&["dynamodb:BatchWriteItem"]));
    for (name, _) in of_type(&res, "AWS::Serverless::Function") {
        if !["EvaluateFunction", "DeployFunction", "RejectFunction"].contains(&name.as_str()) {
            assert_eq!(table_actions(name), set(&[]), "{name} has no business with the score table");
        }
    }
}
