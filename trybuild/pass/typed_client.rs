//! The typed client that `#[agent]` generates for `#[rpc]` methods: every
//! return form, a `ctx` parameter, a parameter type that is not
//! `Serialize` (the agent compiles; only that method cannot be called
//! through the client), and calls from a `Context`, a `Client` and an
//! `AgentHandle`.

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Stats {
    calls: u64,
}

/// Deserialize only: callable by name, not through the typed client.
#[derive(Deserialize)]
struct Opaque {
    n: i64,
}

/// What a caller sends for an `Opaque`.
#[derive(Serialize)]
struct OpaqueArg {
    n: i64,
}

#[agent(identity = "calc")]
#[derive(Default)]
struct Calc {
    calls: u64,
}

#[agent]
impl Calc {
    #[rpc]
    pub async fn multiply(&mut self, x: i64, y: i64) -> i64 {
        self.calls += 1;
        x * y
    }

    #[rpc]
    async fn divide(&mut self, x: i64, y: i64) -> Result<i64, String> {
        if y == 0 {
            return Err("division by zero".to_owned());
        }
        Ok(x / y)
    }

    #[rpc]
    async fn stats(&mut self, ctx: &Context) -> anyhow::Result<Stats> {
        let _ = ctx.identity();
        Ok(Stats { calls: self.calls })
    }

    #[rpc]
    async fn reset(&mut self) {
        self.calls = 0;
    }

    #[rpc]
    async fn greet(&mut self, name: String, excited: Option<bool>) -> munggoggo::Result<String> {
        Ok(format!("hello {name}{}", if excited == Some(true) { "!" } else { "" }))
    }

    #[rpc]
    async fn opaque(&mut self, value: Opaque) -> i64 {
        value.n
    }
}

/// Calls another agent from a handler through the typed client.
#[agent(identity = "asker")]
#[derive(Default)]
struct Asker;

#[agent]
impl Asker {
    #[rpc]
    async fn ask(&mut self, ctx: &Context) -> munggoggo::Result<i64> {
        Calc::client(ctx).multiply(6, 7).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> munggoggo::Result<()> {
    let rt = munggoggo::Runtime::memory()
        .agent(Calc::default())
        .agent_as("calc-2", Calc::default())
        .agent(Asker)
        .start()
        .await?;
    let client = rt.client("tester").await?;
    let calc = Calc::client(&client);
    let product: i64 = calc.multiply(3, 2).await?;
    assert_eq!(product, 6);
    assert_eq!(calc.divide(9, 3).await?, 3);
    assert!(calc.divide(1, 0).await.is_err());
    assert_eq!(calc.stats().await?, Stats { calls: 1 });
    calc.reset().await?;
    assert_eq!(calc.greet("ada".to_owned(), Some(true)).await?, "hello ada!");
    assert_eq!(Calc::client_for(&client, "calc-2").stats().await?, Stats { calls: 0 });
    let asker = rt.agent("asker").expect("asker runs");
    assert_eq!(Calc::client(&asker).multiply(2, 2).await?, 4);
    assert_eq!(client.call::<i64>("asker", "ask", ()).await?, 42);
    // The string form stays, for what the client cannot express.
    assert_eq!(client.call::<i64>("calc", "opaque", [OpaqueArg { n: 5 }]).await?, 5);
    rt.shutdown().await;
    Ok(())
}
