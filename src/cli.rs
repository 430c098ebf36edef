//! Command-line interface: what each subcommand takes, and the checks done before anything
//! starts.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use model::Site;

use crate::{evaluate, maintenance_eval, topology};

#[derive(Debug, Parser)]
#[command(
    name = "pharmatwin",
    version,
    about = "Digital twin of multi-site oral-solid-dose pharmaceutical manufacturing"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What the twin core learns from and where its alerts go.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TwinArgs {
    /// Days of simulated batch history the CQA models first learn from (0: none).
    #[arg(long, default_value_t = 20.0)]
    pub(crate) quality_days: f64,
    /// Days of simulated run-to-failure history (at 4× wear) the maintenance models first
    /// learn from (0: none, no maintenance predictions).
    #[arg(long, default_value_t = 15.0)]
    pub(crate) maintenance_days: f64,
    /// POST every maintenance alert event (raised, escalated, acknowledged, closed) as JSON
    /// to this URL, retried with backoff.
    #[arg(long)]
    pub(crate) webhook: Option<String>,
    /// The append-only log of maintenance actions (default: `maintenance.jsonl` in the
    /// data dir; central keeps none unless given).
    #[arg(long)]
    pub(crate) maintenance_log: Option<PathBuf>,
    /// The hash-chained audit trail (default: `audit.jsonl` in the data dir; central keeps
    /// none unless given).
    #[arg(long)]
    pub(crate) audit_log: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) web: WebArgs,
}

/// Who may use the web view, and how it is served.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WebArgs {
    /// The user file (default: `users.json` in the data dir; central needs it given). Make
    /// the first admin with `pharmatwin users create-admin`.
    #[arg(long)]
    pub(crate) users: Option<PathBuf>,
    /// Serve the web view over HTTPS with this PEM certificate (chain)…
    #[arg(long)]
    pub(crate) tls_cert: Option<PathBuf>,
    /// …and this PEM private key.
    #[arg(long)]
    pub(crate) tls_key: Option<PathBuf>,
    /// A session ends this long after its login, active or not.
    #[arg(long, default_value_t = 12.0)]
    pub(crate) session_hours: f64,
    /// A session ends after this many minutes without a request.
    #[arg(long, default_value_t = 30)]
    pub(crate) idle_minutes: u32,
}

#[derive(Debug, Subcommand)]
enum Audit {
    /// Checks every record's hash and link; names the first broken record.
    Verify {
        #[arg(long)]
        file: PathBuf,
    },
    /// Writes the (verified) trail as CSV or HTML.
    Export {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, value_parser = ["csv", "html"], default_value = "csv")]
        format: String,
        /// Where to write; standard output when not given.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The connector's certificate store: which OPC UA servers it trusts.
#[derive(Debug, Subcommand)]
enum Pki {
    /// Lists the server certificates refused so far (in `PKI/rejected/`), with thumbprints.
    List {
        /// The PKI folder (`DATA_DIR/pki` for `run` and `demo`).
        #[arg(long)]
        pki: PathBuf,
    },
    /// Trusts a refused server certificate (by thumbprint, or a certificate file): the
    /// connector connects on its next retry. Audited, with the reason.
    Trust {
        #[arg(long)]
        pki: PathBuf,
        /// A thumbprint from `pki list`, or a DER certificate file.
        certificate: String,
        #[arg(long)]
        reason: String,
        /// Default: `audit.jsonl` beside the PKI folder.
        #[arg(long)]
        audit_log: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Users {
    /// Makes the first administrator; the password is read from $PHARMATWIN_PASSWORD.
    CreateAdmin {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// The printed name on their electronic signatures.
        #[arg(long)]
        full_name: String,
        /// Default: `audit.jsonl` beside the user file.
        #[arg(long)]
        audit_log: Option<PathBuf>,
    },
    /// Lists the users with role, scope and lock state.
    List {
        #[arg(long)]
        file: PathBuf,
    },
    /// Lifts a lock after repeated wrong passwords (audited, with the reason).
    Unlock {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        audit_log: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole twin in one process: the three simulated plants, their connectors, the
    /// embedded store, the twin core and the web view.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the embedded store keeps its data [default: pharmatwin-data, or
        /// pharmatwin-training with --training].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Training mode: scenarios (timed faults) can be started from the web view, every
        /// page is marked as training, and the data stay in a directory of their own.
        #[arg(long)]
        training: bool,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Serve the simulated plants on this port and the next two, instead of the ports in
        /// their site files.
        #[arg(long)]
        opcua_port_base: Option<u16>,
        /// Faults to inject into the simulated plants at chosen times (a scenario file).
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[command(flatten)]
        twin: TwinArgs,
    },
    /// Connectors, twin and web view for the given site files, against real OPC UA servers.
    Run {
        /// A site file; repeat for several sites.
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value = "pharmatwin-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        twin: TwinArgs,
    },
    /// One plant's connectors writing into InfluxDB through an on-disk spool (store and
    /// forward): runs at the plant, until interrupted.
    Edge {
        /// The plant's site file.
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
        #[command(flatten)]
        influx: InfluxArgs,
        /// How often the OPC UA server samples each signal, in milliseconds (the server's
        /// minimum applies); default 250.
        #[arg(long)]
        sampling_interval_ms: Option<u64>,
        /// How often the OPC UA server sends what it sampled, in milliseconds; default 500.
        #[arg(long)]
        publishing_interval_ms: Option<u64>,
    },
    /// Twin core, analytics and web view reading InfluxDB, for the sites the edges write:
    /// runs at HQ, until interrupted.
    Central {
        /// A site file; repeat for several sites.
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
        #[command(flatten)]
        influx: InfluxArgs,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        twin: TwinArgs,
    },
    /// Serves one plant's nodes from a simulated plant over OPC UA.
    Simulate {
        /// A built-in site (`shenzhen`, `anhui`, `sichuan`) or a site file.
        #[arg(long)]
        site: String,
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where to listen instead of the site file's endpoint, e.g. `opc.tcp://127.0.0.1:4840/`.
        #[arg(long)]
        endpoint: Option<String>,
        /// Real milliseconds between value updates.
        #[arg(long, default_value_t = 1000)]
        tick_ms: u64,
        /// Serve a counter instead of the plant: every signal changes on every tick, numbers
        /// and text hold the tick's number, booleans alternate, and times lie on the tick
        /// grid. A known reference for counting what reached a historian.
        #[arg(long)]
        tick_counter: bool,
        /// Faults to inject into the plant at chosen times (a scenario file).
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Loads and checks site files, and prints what they hold.
    Check {
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
    },
    /// Writes one value to an OPC UA node (a set-point, for instance).
    Write {
        #[arg(long)]
        endpoint: String,
        /// `nsu=<namespace uri>;s=<id>` or `nsu=<namespace uri>;i=<number>`.
        #[arg(long)]
        node: String,
        /// Written as the node's data type: a number, `true`/`false`, or text.
        #[arg(long)]
        value: String,
    },
    /// Prints an OPC UA server's address-space tree (ids by namespace URI, variables with
    /// data type and value); `--write-site` also drafts a site file from it.
    Browse(crate::browse::BrowseArgs),
    /// The web view's users: the first admin, the list, unlocking.
    Users {
        #[command(subcommand)]
        what: Users,
    },
    /// The OPC UA certificate store: refused server certificates, and trusting one.
    Pki {
        #[command(subcommand)]
        what: Pki,
    },
    /// The audit trail: check its chain, or export it for an inspector.
    Audit {
        #[command(subcommand)]
        what: Audit,
    },
    /// Scores a prediction model on outside data.
    Evaluate {
        #[command(subcommand)]
        what: Evaluate,
    },
    /// Measures samples per second from simulators to the store, and the delay from a
    /// simulated value change to the web API.
    Bench {
        /// How long to measure ingest, in seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Real milliseconds between simulator updates (lower = more samples).
        #[arg(long, default_value_t = 100)]
        tick_ms: u64,
    },
    /// Loads the web view of a demo (started as a child process) with live viewers: prints
    /// each view's first-paint request times, how far behind the twin every update reaches
    /// the viewers, dropped streams, and the server's memory and CPU.
    BenchWeb {
        /// Concurrent live viewers (event streams).
        #[arg(long, default_value_t = 200)]
        viewers: usize,
        /// How long to hold them, in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// OPC UA notifications per second decoded and handed on by one connector from one
    /// server (a load server of `--items` counters ticking `--rate-hz`, in a child process),
    /// then the Python `asyncua` client doing the same job against the same server; prints
    /// both figures, CPU, and the increments lost. `--soak` instead holds the items for
    /// `--seconds` and prints the connector's resident memory every `--sample-every` s.
    BenchOpcua {
        #[arg(long, default_value_t = 20_000)]
        items: usize,
        /// Length of each measuring window (or of the soak), seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Server ticks per second; every counter changes on every tick. Default 10, and 1
        /// with `--soak`.
        #[arg(long)]
        rate_hz: Option<f64>,
        /// Publishing interval of the subscriptions, ms. Default 100, and 1000 with `--soak`.
        #[arg(long)]
        publishing_ms: Option<u64>,
        /// Most notifications the server puts in one publish response (0: no limit).
        #[arg(long, default_value_t = 0)]
        max_notifications: u32,
        #[arg(long)]
        soak: bool,
        /// Seconds between two memory samples of the soak.
        #[arg(long, default_value_t = 60)]
        sample_every: u64,
        /// The Python with `asyncua` to run the peer with.
        #[arg(long, env = "PHARMATWIN_PYTHON", default_value = "python3")]
        python: String,
        /// Measure the connector only.
        #[arg(long)]
        no_peer: bool,
    },
    /// The load server of `bench-opcua`, alone (the bench starts it as its child).
    #[command(hide = true)]
    BenchOpcuaServer {
        #[arg(long)]
        items: usize,
        #[arg(long)]
        rate_hz: f64,
    },
}

/// Where InfluxDB is and how to talk to it. Secrets are read from the environment
/// variables named here, never from the command line.
#[derive(Debug, clap::Args)]
pub(crate) struct InfluxArgs {
    #[arg(long, default_value = "http://127.0.0.1:8086")]
    influx_url: String,
    /// `v1` (`/write`, database; InfluxDB 1.x) or `v2` (`/api/v2/write`, org, bucket, token;
    /// InfluxDB 2.x, 3.x, Cloud).
    #[arg(long, default_value = "v1", value_parser = ["v1", "v2"])]
    influx_api: String,
    /// Database (v1) or bucket (v2).
    #[arg(long, default_value = "pharmatwin")]
    influx_db: String,
    /// Organisation (v2).
    #[arg(long, default_value = "pharmatwin")]
    influx_org: String,
    /// Environment variable holding the API token (v2).
    #[arg(long, default_value = "INFLUX_TOKEN")]
    influx_token_env: String,
    /// User name (v1); the password comes from `--influx-password-env`.
    #[arg(long)]
    influx_user: Option<String>,
    #[arg(long, default_value = "INFLUX_PASSWORD")]
    influx_password_env: String,
    /// Where samples wait until InfluxDB has confirmed them.
    #[arg(long, default_value = "pharmatwin-spool")]
    spool_dir: PathBuf,
    /// Seconds a reader looks back behind its cursor again: points that reach InfluxDB later
    /// than this (an edge's spool replaying) reach the live twin only through history reads.
    #[arg(long, default_value_t = 30)]
    influx_read_overlap_s: u64,
}

impl InfluxArgs {
    fn config(&self) -> connectors::InfluxConfig {
        let mut c = self.api_config();
        c.read.overlap = std::time::Duration::from_secs(self.influx_read_overlap_s.max(1));
        c
    }

    fn api_config(&self) -> connectors::InfluxConfig {
        if self.influx_api == "v2" {
            return connectors::InfluxConfig::v2(
                self.influx_url.clone(),
                self.influx_org.clone(),
                self.influx_db.clone(),
                self.influx_token_env.clone(),
                self.spool_dir.clone(),
            );
        }
        let mut c = connectors::InfluxConfig::v1(
            self.influx_url.clone(),
            self.influx_db.clone(),
            self.spool_dir.clone(),
        );
        if let connectors::InfluxApi::V1 {
            username,
            password_env,
            create_database,
            ..
        } = &mut c.api
        {
            *username = self.influx_user.clone();
            *password_env = self
                .influx_user
                .as_ref()
                .map(|_| self.influx_password_env.clone());
            *create_database = true;
        }
        c
    }
}

#[derive(Debug, Subcommand)]
enum Evaluate {
    /// Remaining useful life on run-to-failure histories in the NASA C-MAPSS text format:
    /// trains on `--train`, predicts the RUL at the last cycle of each `--test` unit and
    /// compares with `--truth` (one RUL per line). Prints RMSE and the NASA score.
    Rul {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        test: PathBuf,
        #[arg(long)]
        truth: PathBuf,
        /// Print `{"rmse":…,"score":…,…}` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Critical-quality-attribute prediction on batch records (`Laboratory.csv` and
    /// `Process.csv` joined on `batch`): trains on `--train-dir`, tests on `--test-dir`,
    /// prints RMSE, R² and the mean-only baseline's RMSE.
    Quality {
        #[arg(long)]
        train_dir: PathBuf,
        #[arg(long)]
        test_dir: PathBuf,
        /// A laboratory column, e.g. `tbl_tensile`, `impurities_total`, `dissolution_av`.
        #[arg(long)]
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Multivariate statistical process monitoring on Tennessee Eastman data: fits on the
    /// normal `--train` run, prints the false-alarm rate on `--normal` and the detection rate
    /// of each `--fault` file from sample `--fault-start` on (earlier samples count as
    /// normal), and the means.
    Mspc {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        normal: PathBuf,
        /// A fault run; repeat for several.
        #[arg(long = "fault", required = true, num_args = 1..)]
        faults: Vec<PathBuf>,
        #[arg(long, default_value_t = 0)]
        fault_start: usize,
        #[arg(long)]
        json: bool,
    },
    /// Quality predictions on the simulated plants: runs the three plants offline for
    /// `--days`, trains the CQA models on the first two thirds of the batches, predicts the
    /// rest live, pushes one batch out of specification and prints prediction RMSE against
    /// the lab's noise and when the release-risk alert came.
    Batches {
        #[arg(long, default_value_t = 45.0)]
        days: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// Predictive maintenance on the simulated plants: trains the degradation models on a
    /// fleet run to failure (`--train-days`, another seed), then runs the three plants for
    /// `--days` with preventive maintenance on the makers' schedule and predictions every
    /// simulated hour; prints the share of failures alerted at least 24 h ahead and the
    /// share of alerts that preceded a real fault.
    Maintenance {
        #[arg(long, default_value_t = 90.0)]
        days: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 30.0)]
        train_days: f64,
        /// The training fleet wears this many times faster than in service (accelerated
        /// life test), so it sees whole lives in a short run.
        #[arg(long, default_value_t = 4.0)]
        pace: f64,
        /// Planning horizon of the failure probability, hours.
        #[arg(long, default_value_t = 168.0)]
        horizon_h: f64,
        /// Failure probability within the horizon that raises an alert.
        #[arg(long, default_value_t = 0.5)]
        threshold: f64,
        /// Preventive maintenance renews parts at this fraction of the maker's life.
        #[arg(long, default_value_t = 0.8)]
        interval: f64,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn dispatch(cli: Cli) -> Result<()> {
    // A bad certificate or key is named before any plant, store or port is touched.
    if let Command::Demo { twin, .. } | Command::Run { twin, .. } | Command::Central { twin, .. } =
        &cli.command
    {
        crate::accounts::tls(&twin.web)?;
    }
    match cli.command {
        Command::Demo {
            listen,
            data_dir,
            training,
            speed,
            seed,
            opcua_port_base,
            scenario,
            twin,
        } => {
            let mut sites = sites::builtin_sites().context("built-in site files")?;
            if let Some(base) = opcua_port_base {
                for (i, site) in sites.iter_mut().enumerate() {
                    site.endpoint = format!("opc.tcp://127.0.0.1:{}/", base + i as u16);
                }
            }
            let sites: Vec<Arc<Site>> = sites.into_iter().map(Arc::new).collect();
            topology::demo(
                sites,
                topology::SimSettings {
                    speed,
                    seed,
                    tick_ms: 1000,
                    tick_counter: false,
                },
                listen,
                &data_dir.unwrap_or_else(|| {
                    PathBuf::from(if training {
                        "pharmatwin-training"
                    } else {
                        "pharmatwin-data"
                    })
                }),
                twin,
                load_scenario(scenario.as_deref())?,
                training,
            )
            .await
        }
        Command::Run {
            configs,
            listen,
            data_dir,
            twin,
        } => {
            let sites = load_sites(&configs)?;
            topology::run(sites, listen, &data_dir, twin, 1.0, None).await
        }
        Command::Edge {
            configs,
            influx,
            sampling_interval_ms,
            publishing_interval_ms,
        } => {
            let mut opts = connectors::SourceOptions::default();
            if let Some(ms) = sampling_interval_ms {
                opts.sampling_interval_ms = ms;
            }
            if let Some(ms) = publishing_interval_ms {
                opts.publishing_interval_ms = ms;
            }
            let influx = influx.config();
            // The edge keeps its gap records beside its spool: both are what it owes central.
            opts.gap_log = Some(influx.spool.dir.join("gaps.jsonl"));
            topology::edge(load_sites(&configs)?, influx, opts).await
        }
        Command::Central {
            configs,
            influx,
            listen,
            twin,
        } => topology::central(load_sites(&configs)?, influx.config(), listen, twin).await,
        Command::Simulate {
            site,
            speed,
            seed,
            endpoint,
            tick_ms,
            tick_counter,
            scenario,
        } => {
            let mut site = resolve_site(&site)?;
            if let Some(e) = endpoint {
                site.endpoint = e;
            }
            topology::simulate(
                Arc::new(site),
                topology::SimSettings {
                    speed,
                    seed,
                    tick_ms,
                    tick_counter,
                },
                load_scenario(scenario.as_deref())?,
            )
            .await
        }
        Command::Check { configs } => {
            for s in load_sites(&configs)? {
                let mut per_cat = std::collections::BTreeMap::new();
                for (_, _, sig) in s.signals() {
                    *per_cat.entry(sig.category).or_insert(0usize) += 1;
                }
                let cats: Vec<String> = per_cat.iter().map(|(c, n)| format!("{c} {n}")).collect();
                println!(
                    "{}: site `{}` ({}), {} lines, {} signals ({}), endpoint {}",
                    s.origin,
                    s.id,
                    s.name,
                    s.lines.len(),
                    s.signal_count(),
                    cats.join(", "),
                    s.endpoint
                );
            }
            Ok(())
        }
        Command::Write {
            endpoint,
            node,
            value,
        } => topology::write(&endpoint, &node, &value).await,
        Command::Browse(args) => crate::browse::run(args).await,
        Command::Evaluate {
            what:
                Evaluate::Rul {
                    train,
                    test,
                    truth,
                    json,
                },
        } => evaluate::rul(&train, &test, &truth, json),
        Command::Evaluate {
            what:
                Evaluate::Quality {
                    train_dir,
                    test_dir,
                    target,
                    json,
                },
        } => evaluate::quality(&train_dir, &test_dir, &target, json),
        Command::Evaluate {
            what:
                Evaluate::Mspc {
                    train,
                    normal,
                    faults,
                    fault_start,
                    json,
                },
        } => evaluate::mspc(&train, &normal, &faults, fault_start, json),
        Command::Evaluate {
            what: Evaluate::Batches { days, seed, json },
        } => evaluate::batches(
            sites::builtin_sites()?.into_iter().map(Arc::new).collect(),
            days,
            seed,
            json,
        ),
        Command::Evaluate {
            what:
                Evaluate::Maintenance {
                    days,
                    seed,
                    train_days,
                    pace,
                    horizon_h,
                    threshold,
                    interval,
                    json,
                },
        } => maintenance_eval::evaluate(
            sites::builtin_sites()?.into_iter().map(Arc::new).collect(),
            maintenance_eval::Options {
                days,
                train_days,
                seed,
                horizon_h,
                threshold,
                interval,
                pace,
            },
            json,
        ),
        Command::Audit {
            what: Audit::Verify { file },
        } => {
            let records = audit::verify(&file)?;
            println!(
                "{}: {} records, chain intact",
                file.display(),
                records.len()
            );
            Ok(())
        }
        Command::Audit {
            what: Audit::Export { file, format, out },
        } => {
            let records = audit::verify(&file)?;
            let text = match format.as_str() {
                "html" => audit::to_html(
                    &records,
                    &format!("PharmaTwin audit trail — {}", file.display()),
                ),
                _ => audit::to_csv(&records),
            };
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Users { what } => match what {
            Users::CreateAdmin {
                file,
                name,
                full_name,
                audit_log,
            } => crate::accounts::create_admin(&file, &name, &full_name, audit_log.as_deref()),
            Users::List { file } => crate::accounts::list(&file),
            Users::Unlock {
                file,
                name,
                reason,
                audit_log,
            } => crate::accounts::unlock(&file, &name, &reason, audit_log.as_deref()),
        },
        Command::Bench { seconds, tick_ms } => topology::bench(seconds, tick_ms).await,
        Command::BenchWeb { viewers, seconds } => crate::bench_web::run(viewers, seconds).await,
        Command::BenchOpcua {
            items,
            seconds,
            rate_hz,
            publishing_ms,
            max_notifications,
            soak,
            sample_every,
            python,
            no_peer,
        } => {
            crate::bench_opcua::run(crate::bench_opcua::Options {
                items,
                seconds,
                rate_hz: rate_hz.unwrap_or(if soak { 1.0 } else { 10.0 }),
                publishing_ms: publishing_ms.unwrap_or(if soak { 1000 } else { 100 }),
                max_notifications,
                soak,
                sample_every,
                python: (!no_peer && !soak).then_some(python),
            })
            .await
        }
        Command::BenchOpcuaServer { items, rate_hz } => {
            crate::bench_opcua::serve(items, rate_hz).await
        }
        Command::Pki { what } => match what {
            Pki::List { pki } => {
                for (file, thumbprint) in connectors::rejected_certificates(&pki)? {
                    println!("{thumbprint}\t{}", file.display());
                }
                Ok(())
            }
            Pki::Trust {
                pki,
                certificate,
                reason,
                audit_log,
            } => crate::accounts::trust(&pki, &certificate, &reason, audit_log.as_deref()),
        },
    }
}

fn load_scenario(path: Option<&std::path::Path>) -> Result<Option<sites::scenario::Scenario>> {
    Ok(path.map(sites::scenario::Scenario::load).transpose()?)
}

fn load_sites(files: &[PathBuf]) -> Result<Vec<Arc<Site>>> {
    let mut sites: Vec<Arc<Site>> = Vec::new();
    for f in files {
        let site = model::load_site_file(f)?;
        if let Some(other) = sites.iter().find(|s| s.id == site.id) {
            anyhow::bail!(
                "{}: site id `{}` is already used by {}",
                site.origin,
                site.id,
                other.origin
            );
        }
        sites.push(Arc::new(site));
    }
    Ok(sites)
}

fn resolve_site(name: &str) -> Result<Site> {
    if let Some(site) = sites::builtin_site(name) {
        return Ok(site?);
    }
    let path = PathBuf::from(name);
    if path.exists() {
        return Ok(model::load_site_file(&path)?);
    }
    anyhow::bail!("`{name}` is neither a built-in site (shenzhen, anhui, sichuan) nor a site file")
}
