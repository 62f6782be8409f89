//! An `#[rpc]` method whose return type is a `Result` under another name
//! (`type Res<T> = Result<T, E>`) is a `Result` all the same: its value goes
//! out as the value, its error as an error, not `{"Ok": ...}` as a plain
//! `Serialize` value would. The shape is proven by the type, not its name.

use std::fmt;

use munggoggo::prelude::*;

type Res<T> = Result<T, String>;

/// An error that is `Display` but not `Serialize`.
#[derive(Debug)]
struct Odd(i64);

impl fmt::Display for Odd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is odd", self.0)
    }
}

type Checked<T> = std::result::Result<T, Odd>;

/// A plain value under another name stays a plain value.
type Count = u64;

#[agent(identity = "halver")]
#[derive(Default)]
struct Halver;

#[agent]
impl Halver {
    #[rpc]
    async fn halve(&mut self, n: i64) -> Res<i64> {
        if n % 2 != 0 {
            return Err(format!("{n} is odd"));
        }
        Ok(n / 2)
    }

    #[rpc]
    async fn checked(&mut self, n: i64) -> Checked<i64> {
        if n % 2 != 0 {
            return Err(Odd(n));
        }
        Ok(n / 2)
    }

    #[rpc]
    async fn count(&mut self) -> Count {
        3
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> munggoggo::Result<()> {
    let rt = munggoggo::Runtime::memory().agent(Halver).start().await?;
    let client = rt.client("tester").await?;
    assert_eq!(client.call::<i64>("halver", "halve", (4,)).await?, 2);
    let err = client.call::<i64>("halver", "halve", (3,)).await.unwrap_err();
    assert!(matches!(&err, munggoggo::Error::Remote { error, .. } if error == "3 is odd"), "{err}");
    assert_eq!(client.call::<i64>("halver", "checked", (8,)).await?, 4);
    let err = client.call::<i64>("halver", "checked", (5,)).await.unwrap_err();
    assert!(matches!(&err, munggoggo::Error::Remote { error, .. } if error == "5 is odd"), "{err}");
    assert_eq!(client.call::<u64>("halver", "count", ()).await?, 3);
    // The typed client returns the alias itself, `Ok` when the call succeeded.
    let typed = Halver::client(&client);
    assert_eq!(typed.halve(6).await?, Ok(3));
    assert!(matches!(typed.halve(1).await, Err(munggoggo::Error::Remote { .. })));
    assert_eq!(typed.count().await?, 3);
    rt.shutdown().await;
    Ok(())
}
