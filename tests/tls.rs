//! TLS end to end: a private RabbitMQ node (see `common/node.rs`) with a
//! TLS listener whose certificate is signed by a CA this test makes; agents
//! connect over `amqps://` trusting that CA (`cacertfile`) and exchange
//! messages and a call. Without the CA, or with `amqps://` against the
//! plain port, the connection fails at once with a reason.

#![cfg(feature = "tls")]

mod common;

use std::time::Duration;

use common::node::{Node, TlsFiles};
use munggoggo::prelude::*;
use munggoggo::{Error, Runtime};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Hello {
    n: u32,
}

#[agent]
#[derive(Default)]
struct Echo {
    hellos: u32,
}

#[agent]
impl Echo {
    #[on_message]
    async fn hello(&mut self, msg: Hello) {
        assert!(msg.n < 100);
        self.hellos += 1;
    }

    #[rpc]
    async fn count(&mut self) -> u32 {
        self.hellos
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost, signed by it.
fn certificates() -> TlsFiles {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "munggoggo test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    TlsFiles {
        ca_cert: ca_cert.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_talk_over_tls_with_a_private_ca() {
    let Some(node) = Node::start_or_skip("tls", Some(&certificates())) else {
        return;
    };
    let ca = node.dir().join("ca.pem");
    let url = format!("{}?cacertfile={}", node.tls_url(), ca.display());

    let rt = Runtime::from_url(&url)
        .unwrap()
        .agent_as("tls-echo", Echo::default())
        .start()
        .await
        .expect("agents start over amqps:// with the private CA");
    let client = rt.client("tls-client").await.unwrap();
    for n in 0..100 {
        client
            .send("tls-echo", &Hello { n })
            .await
            .expect("a send over TLS");
    }
    let count = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let count: u32 = client
                .call("tls-echo", "count", ())
                .await
                .expect("a call over TLS");
            if count == 100 {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("all 100 messages arrive over TLS");
    assert_eq!(count, 100);
    client.shutdown().await;
    rt.shutdown().await;

    // Without the CA the server's certificate is not trusted.
    let untrusted = tokio::time::timeout(
        Duration::from_secs(30),
        Runtime::from_url(&node.tls_url()).unwrap().start(),
    )
    .await
    .expect("an untrusted certificate fails at once, not after the connect timeout");
    let Err(error) = untrusted else {
        panic!("the connection is refused without the CA")
    };
    assert!(matches!(error, Error::ConnectionLost { .. }), "{error:?}");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );

    // amqps:// against the plain AMQP port.
    let plain = node.url().replacen("amqp://", "amqps://", 1);
    let wrong_port = tokio::time::timeout(
        Duration::from_secs(30),
        Runtime::from_url(&plain).unwrap().start(),
    )
    .await
    .expect("TLS against a plain port fails at once");
    let Err(error) = wrong_port else {
        panic!("TLS against a plain port fails")
    };
    assert!(matches!(error, Error::ConnectionLost { .. }), "{error:?}");
    assert!(error.to_string().contains("TLS port"), "{error}");
    assert!(
        !error.to_string().contains("guest:guest"),
        "the password shows: {error}"
    );
}
