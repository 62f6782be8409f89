//! The dashboard page in a real browser: headless Chromium driven over
//! WebDriver (chromedriver, started here on a free port). Agents run on
//! the embedded bus; the page must show every agent and behaviour, and a
//! click on Stop must stop the behaviour on the page and on the agent.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `CHROME` and `CHROMEDRIVER` name other binaries).
//! Without them the test skips with a message, unless `CI` is set: then it
//! fails. With `MUNGGOGGO_SCREENSHOT=docs/dashboard.png` it also saves a
//! screenshot of the page (the README's picture).
//!
//! Run with `cargo test -p munggoggo-web --test web_browser -- --nocapture`.

mod web_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use munggoggo::prelude::*;
use munggoggo::{Runtime, State};
use munggoggo_web::{Dashboard, DashboardOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;
use web_common::{legacy_agent, within, Calc, Lamp, Toggle};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Ping {
    n: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Pong {
    n: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Reading {
    celsius: f64,
}

/// Publishes a ping on the topic `ping` every 300 ms.
#[agent(identity = "pinger")]
#[derive(Default)]
struct Pinger {
    sent: u64,
}

#[agent]
impl Pinger {
    #[behaviour(periodic = "300ms")]
    async fn ping(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        self.sent += 1;
        ctx.publish("ping", &Ping { n: self.sent }).await
    }

    #[on_message]
    async fn pong(&mut self, _pong: Pong) {}
}

/// Answers pings.
#[agent(identity = "ponger")]
#[derive(Default)]
struct Ponger;

#[agent]
impl Ponger {
    #[on_message(topic = "ping")]
    async fn ping(&mut self, ctx: &Context, ping: Envelope<Ping>) -> munggoggo::Result<()> {
        ctx.send(ping.sender(), &Pong { n: ping.n }).await
    }
}

/// Publishes a temperature every 400 ms.
#[agent(identity = "kitchen-sensor")]
#[derive(Default)]
struct Sensor {
    n: u64,
}

#[agent]
impl Sensor {
    #[behaviour(periodic = "400ms")]
    async fn measure(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        self.n += 1;
        let celsius = 20.0 + (self.n % 7) as f64 * 0.5;
        ctx.publish("sensors.kitchen", &Reading { celsius }).await
    }
}

/// Keeps the readings; refuses implausible ones.
#[agent(identity = "historian")]
#[derive(Default)]
struct Historian {
    readings: Vec<f64>,
}

#[agent]
impl Historian {
    #[on_message(topic = "sensors.#")]
    async fn record(&mut self, reading: Reading) -> anyhow::Result<()> {
        anyhow::ensure!(
            reading.celsius < 22.5,
            "implausible reading {} °C",
            reading.celsius
        );
        self.readings.push(reading.celsius);
        Ok(())
    }

    #[behaviour(periodic = "1m")]
    async fn compact(&mut self) {
        self.readings.clear();
    }
}

/// chromedriver, stopped when dropped, and the browser's profile folder.
struct Driver {
    child: Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A binary from the environment variable `var`, else the first of `names` on the PATH.
fn find_binary(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts chromedriver and opens a headless Chromium session, or says why not.
async fn browser() -> Result<(Driver, Client), String> {
    let driver = find_binary("CHROMEDRIVER", &["chromedriver"]).ok_or("chromedriver is not installed")?;
    let chrome = find_binary("CHROME", &["chromium", "chromium-browser", "google-chrome"])
        .ok_or("chromium is not installed")?;
    let port = free_port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", driver.display()))?;
    let profile = std::env::temp_dir().join(format!("munggoggo-chromium-{}-{port}", std::process::id()));
    let driver = Driver {
        child,
        profile: profile.clone(),
    };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chrome,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--window-size=1480,1180", "--force-device-scale-factor=1",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    // chromedriver takes a moment to listen: try until it answers.
    let url = format!("http://127.0.0.1:{port}");
    let client = within("chromedriver answers", async {
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return Ok(client),
                Err(fantoccini::error::NewSessionError::Failed(e)) => {
                    return Err(format!("no browser session: {e}"))
                }
                Err(fantoccini::error::NewSessionError::SessionNotCreated(e)) => {
                    return Err(format!("no browser session: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await?;
    Ok((driver, client))
}

/// Clicks the element `css`, finding it again when the page re-rendered it
/// between finding and clicking.
async fn click(client: &Client, css: &str) {
    within(css, async {
        loop {
            let element = client
                .wait()
                .at_most(Duration::from_secs(180))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css} is on the page: {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
                Err(e) => panic!("cannot click {css}: {e}"),
            }
        }
    })
    .await;
}

async fn expect(client: &Client, css: &str) {
    if let Err(e) = client
        .wait()
        .at_most(Duration::from_secs(180))
        .for_element(Locator::Css(css))
        .await
    {
        panic!(
            "the page shows {css}: {e}\nthe page's state: {}",
            page_state(client).await
        );
    }
}

/// The text of the first element `css`, found anew each time.
async fn cell_text(client: &Client, css: &str) -> String {
    loop {
        let cell = client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("the page shows {css}: {e}"));
        match cell.text().await {
            Ok(text) => return text,
            Err(CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
            Err(e) => panic!("cannot read {css}: {e}"),
        }
    }
}

/// What the page knows, for a failure message.
async fn page_state(client: &Client) -> serde_json::Value {
    const STATE: &str = "return { selected: app.selected, peers: [...app.peers.keys()], \
        feed: app.feed.length, seen: app.seen, \
        newest: app.feed.slice(-12).map((t) => `${t.time} ${t.from} -> ${t.to} ${t.type}`), \
        shown: [...document.querySelectorAll('#messages li')].slice(0, 12).map((li) => li.textContent) };";
    client
        .execute(STATE, Vec::new())
        .await
        .unwrap_or_else(|e| json!(format!("unknown ({e})")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_agents_and_stops_a_behaviour() {
    let started = std::time::Instant::now();
    let (driver, client) = match browser().await {
        Ok(browser) => browser,
        Err(reason) => {
            munggoggo_test_support::skip(format_args!(
                "{reason} (apt-get install chromium chromium-driver)"
            ));
            return;
        }
    };
    eprintln!("[{:>6.1?}] the browser is ready", started.elapsed());
    // Whatever happens, the browser is closed before chromedriver stops.
    let outcome = tokio::spawn(scenario(client.clone())).await;
    let _ = client.close().await;
    drop(driver);
    eprintln!("[{:>6.1?}] the browser is closed", started.elapsed());
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Agents, the dashboard and the page.
async fn scenario(client: Client) {
    let started = std::time::Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let runtime = Runtime::memory()
        .agent(Pinger::default())
        .agent(Ponger)
        .agent(Sensor::default())
        .agent(Historian::default())
        .agent(Calc)
        .agent(Lamp::default())
        .start()
        .await
        .expect("agents start");
    legacy_agent(&runtime, "agent1").await;
    let options = DashboardOptions::default().refresh(Duration::from_millis(300));
    let dashboard = Dashboard::start(&runtime, options)
        .await
        .expect("the dashboard starts");
    let listener = munggoggo_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
        listener,
        dashboard.router(),
    )));

    step("loading the page");
    client
        .goto(&format!("http://{address}/"))
        .await
        .expect("the page loads");
    let agents = [
        "pinger",
        "ponger",
        "kitchen-sensor",
        "historian",
        "calc",
        "lamp",
        "agent1",
    ];
    for agent in agents {
        expect(&client, &format!("tr.agent-row[data-agent='{agent}']")).await;
        expect(&client, &format!("#graph g.agent[data-agent='{agent}']")).await;
    }
    for handle in runtime.agents().iter().filter(|a| agents.contains(&a.identity())) {
        for b in handle.behaviours() {
            expect(&client, &format!("tr.behaviour-row[data-behaviour='{}']", b.name)).await;
            expect(
                &client,
                &format!("#graph g.behaviour[data-behaviour='{}']", b.name),
            )
            .await;
        }
    }
    step("the last behaviour");
    expect(&client, "tr.behaviour-row[data-behaviour='agent1.PingBehav']").await;
    expect(&client, "#graph g.topicnode[data-topic='sensors.#']").await;

    step("every agent, behaviour and topic shown");
    if let Some(path) = std::env::var_os("MUNGGOGGO_SCREENSHOT") {
        // A lively picture: messages in the list and an error in the table.
        expect(&client, "#messages li:nth-child(8)").await;
        expect(
            &client,
            "tr.behaviour-row[data-behaviour='historian.record'] td.errors-some",
        )
        .await;
        let png = client.screenshot().await.expect("a screenshot");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::write(&path, png).expect("the screenshot is saved");
        eprintln!("saved {}", path.display());
    }

    step("selecting an agent");
    // Select an agent: its messages.
    click(&client, "tr.agent-row[data-agent='historian']").await;
    expect(&client, "tr.agent-row.selected[data-agent='historian']").await;
    let title = client
        .find(Locator::Id("messages-of"))
        .await
        .expect("a title")
        .text()
        .await
        .expect("text");
    assert_eq!(title, "of historian");
    expect(&client, "#messages li").await;

    step("sending a message");
    // Send a message from the form: it shows among the messages. The pinger
    // and ponger keep the list moving (and a busy machine slows the page),
    // so the test filters the list by the message's body first: a match stays
    // shown, whatever scrolls past.
    let filter = client
        .find(Locator::Id("messages-filter"))
        .await
        .expect("the filter");
    filter.send_keys("4242017").await.expect("typed");
    let to = client
        .find(Locator::Id("message-to"))
        .await
        .expect("the receiver");
    to.select_by_value("pinger").await.expect("pinger is a choice");
    client
        .find(Locator::Id("message-type"))
        .await
        .expect("the type")
        .send_keys("Pong")
        .await
        .expect("typed");
    let body = client.find(Locator::Id("message-body")).await.expect("the body");
    body.clear().await.expect("cleared");
    body.send_keys(r#"{"n": 4242017}"#).await.expect("typed");
    click(&client, "#form-message button[type='submit']").await;
    expect(&client, "#result[data-status='ok']").await;
    click(&client, "tr.agent-row[data-agent='pinger']").await;
    expect(
        &client,
        "#messages li[data-type='Pong'][data-to='pinger'][data-from^='munggoggo-dashboard-']",
    )
    .await;
    let shown = cell_text(&client, "#messages li .body").await;
    assert_eq!(shown, r#"{"n":4242017}"#, "the filter shows the message sent");
    within(
        "the pinger takes the pong",
        runtime.agent("pinger").expect("the pinger runs").wait_until(|p| {
            p.traces()
                .all(None)
                .iter()
                .any(|e| e.record.body.as_ref() == br#"{"n":4242017}"#.as_slice())
        }),
    )
    .await
    .expect("the pinger runs");

    step("calling a method");
    // Call a method from the form.
    click(&client, ".tab[data-tab='call']").await;
    let params = client
        .find(Locator::Id("call-params"))
        .await
        .expect("the parameters");
    params.clear().await.expect("cleared");
    params.send_keys("[6, 7]").await.expect("typed");
    click(&client, "#form-call button[type='submit']").await;
    let result = client
        .wait()
        .at_most(Duration::from_secs(180))
        .for_element(Locator::Css("#result[data-status='ok']"))
        .await
        .expect("the call is answered");
    assert_eq!(result.text().await.expect("text"), "42");

    step("a busy row keeps its node");
    // The pinger's run count changes every 300 ms; its row must stay the
    // same node (only changed cells are redrawn), or a click on its button
    // could fall between two redraws and be lost.
    let row_css = "tr.behaviour-row[data-behaviour='pinger.ping']";
    let row = client
        .find(Locator::Css(row_css))
        .await
        .expect("the pinger's row");
    let runs_css = format!("{row_css} td.num");
    let runs = cell_text(&client, &runs_css).await;
    within("the pinger's run count changes on the page", async {
        while cell_text(&client, &runs_css).await == runs {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        row.attr("data-behaviour")
            .await
            .expect("the row found before the redraw is still on the page"),
        Some("pinger.ping".to_owned())
    );

    step("stopping a behaviour");
    // Stop the ponger's handler with a click: the page and the agent agree.
    let ponger = runtime.agent("ponger").expect("the ponger runs");
    assert_eq!(ponger.behaviour("ping").expect("ping").state, State::Running);
    click(
        &client,
        "tr.behaviour-row[data-behaviour='ponger.ping'] button[data-action='stop']",
    )
    .await;
    expect(
        &client,
        "tr.behaviour-row[data-behaviour='ponger.ping'] .badge[data-state='init']",
    )
    .await;
    expect(
        &client,
        "#graph g.behaviour[data-behaviour='ponger.ping'] circle.init",
    )
    .await;
    within(
        "the ponger's handler stops",
        ponger.wait_until(|p| p.behaviour("ping").is_some_and(|b| b.state == State::Init)),
    )
    .await
    .expect("the ponger runs");
    expect(
        &client,
        "tr.behaviour-row[data-behaviour='ponger.ping'] button[data-action='start']",
    )
    .await;

    step("starting it again");
    // And start it again.
    click(
        &client,
        "tr.behaviour-row[data-behaviour='ponger.ping'] button[data-action='start']",
    )
    .await;
    expect(
        &client,
        "tr.behaviour-row[data-behaviour='ponger.ping'] .badge[data-state='running']",
    )
    .await;
    within(
        "the ponger's handler runs again",
        ponger.wait_until(|p| p.behaviour("ping").is_some_and(|b| b.state == State::Running)),
    )
    .await
    .expect("the ponger runs");

    step("a state machine moves");
    // The lamp's machine is drawn with its current state highlighted, and
    // the highlight follows the machine.
    expect(
        &client,
        "#graph g.fsm-state.current[data-machine='lamp.light'][data-state='Off']",
    )
    .await;
    expect(
        &client,
        "#graph g.fsm-state[data-machine='lamp.light'][data-state='On']",
    )
    .await;
    let switch = runtime.client("lamp-switch").await.expect("a client");
    switch.send("lamp", &Toggle {}).await.expect("sent");
    expect(
        &client,
        "#graph g.fsm-state.current[data-machine='lamp.light'][data-state='On']",
    )
    .await;
    expect(
        &client,
        "tr.behaviour-row[data-behaviour='lamp.light'] .fsm-current[data-fsm-state='On']",
    )
    .await;

    step("done");
    dashboard.leave().await;
    runtime.shutdown().await;
}
