//! `marquee aws ...` and `--aws`: drive a deployed stack without the console. The logic lives in
//! marquee-aws; this wires it to clap.

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use marquee_aws::execution::{start_and_follow, StartOptions};
use marquee_aws::AwsStores;
use marquee_pipeline::store::{ObjectStore, ScoreStore};

#[derive(Subcommand)]
pub enum AwsCmd {
    /// Start a pipeline execution on the deployed state machine and follow it to its end
    ///
    /// Credentials and region come from the AWS default chain (profile, env, SSO).
    ///
    /// Examples:
    ///   marquee aws start --spec-key raw/demo/pipeline.toml
    ///   MARQUEE_STATE_MACHINE_ARN=arn:aws:states:... marquee aws start --run-id retrain-2024w01
    #[command(verbatim_doc_comment)]
    Start {
        /// Object key of the pipeline spec in the bucket.
        #[arg(long, default_value = "raw/demo/pipeline.toml")]
        spec_key: String,
        /// The pipeline state machine (the stack output `StateMachineArn`).
        #[arg(long, env = "MARQUEE_STATE_MACHINE_ARN")]
        state_machine: Option<String>,
        /// Run id (also the execution name); default: derived by the Normalize step.
        #[arg(long)]
        run_id: Option<String>,
        /// Train every use case even when its data and spec are its champion's.
        #[arg(long)]
        retrain: bool,
    },
}

pub async fn run(cmd: AwsCmd, quiet: bool) -> Result<()> {
    match cmd {
        AwsCmd::Start { spec_key, state_machine, run_id, retrain } => {
            let mut opts = StartOptions::new(spec_key);
            opts.state_machine_arn = state_machine;
            opts.run_id = run_id;
            opts.retrain = retrain;
            let outcome = start_and_follow(&opts, &mut |p| {
                if !quiet {
                    eprintln!("{p}");
                }
            })
            .await?;
            if !outcome.succeeded() {
                bail!(
                    "execution {} ended {}: {}: {}",
                    outcome.execution_arn,
                    outcome.status,
                    outcome.error.unwrap_or_default(),
                    outcome.cause.unwrap_or_default()
                );
            }
            if let Some(output) = outcome.output {
                println!("{}", serde_json::to_string_pretty(&output)?);
            }
            Ok(())
        }
    }
}

/// The deployed stack's stores: bucket and table from MARQUEE_BUCKET / MARQUEE_TABLE.
pub async fn stores() -> Result<(Box<dyn ObjectStore>, Box<dyn ScoreStore>)> {
    let stores = AwsStores::from_env()
        .await
        .context("--aws needs MARQUEE_BUCKET and MARQUEE_TABLE (the stack outputs) and AWS credentials")?;
    Ok((Box::new(stores.objects), Box::new(stores.scores)))
}
