//! A prototype forwarder on russh (issue 26), measured beside Jeeves' libssh2 tunnel and
//! `ssh -N -L`: the question is whether russh's crypto (aws-lc-rs' ChaCha20-Poly1305, the
//! assembly OpenSSH's libcrypto also has) closes the gap libssh2's portable C leaves. It runs
//! on one thread ("russh-tunnel", a current-thread tokio runtime: the session's task and every
//! connection's copy), as Jeeves' tunnel does, so that the bench reads its CPU alone.
//!
//! Settings from russh 0.65.4's source (src/client/mod.rs, `Config`): a 2 MiB window and
//! 32 KiB packets by default, as libssh2 and OpenSSH; Nagle on by default (`nodelay: false`),
//! turned off here as OpenSSH does (`set_nodelay` in its packet.c). The host key is checked
//! against the lab's known_hosts, the same file Jeeves pins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use russh::client::{self, Config, Handle};
use russh::keys::{
    PrivateKeyWithHashAlg, PublicKeyOrCertificate, check_known_hosts_path, load_secret_key,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Bytes each direction's copy buffers (as Jeeves' tunnel buffers per direction).
const BUF: usize = 256 * 1024;

struct Pinned {
    host: String,
    known_hosts: PathBuf,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        Ok(check_known_hosts_path(
            &self.host,
            22,
            key,
            &self.known_hosts,
        )?)
    }

    /// Said aloud: a session that ends mid-run is what the bench is looking for.
    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        println!("russh: session to {} ended: {reason:?}", self.host);
        Ok(())
    }
}

pub struct RusshTunnel {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for RusshTunnel {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

async fn connect(lab: &Path, host: &str) -> Handle<Pinned> {
    let config = Config {
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let pinned = Pinned {
        host: host.into(),
        known_hosts: lab.join("known_hosts"),
    };
    let mut handle = client::connect(Arc::new(config), (host, 22), pinned)
        .await
        .unwrap();
    let key = load_secret_key(lab.join("id_ed25519"), None).unwrap();
    let auth = handle
        .authenticate_publickey("root", PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .unwrap();
    assert!(auth.success(), "russh: key not accepted");
    handle
}

/// Listens on a free local port and forwards each connection to 127.0.0.1:`remote_port` on
/// `host`, one russh session, until dropped.
pub fn open(lab: &Path, host: &str, remote_port: u16) -> RusshTunnel {
    let (lab, host) = (lab.to_path_buf(), host.to_string());
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("russh-tunnel".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let handle = Arc::new(connect(&lab, &host).await);
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let accept = async {
                    loop {
                        let (local, peer) = listener.accept().await.unwrap();
                        tokio::spawn(forward(handle.clone(), local, peer, remote_port));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        })
        .unwrap();
    RusshTunnel {
        port: port_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    }
}

async fn forward(
    handle: Arc<Handle<Pinned>>,
    mut local: tokio::net::TcpStream,
    peer: SocketAddr,
    remote_port: u16,
) {
    local.set_nodelay(true).unwrap();
    let channel = handle
        .channel_open_direct_tcpip(
            "127.0.0.1",
            remote_port.into(),
            peer.ip().to_string(),
            peer.port().into(),
        )
        .await
        .unwrap();
    let mut remote = channel.into_stream();
    // Errors end this connection only (the bench's own checks catch a short transfer).
    let _ = tokio::io::copy_bidirectional_with_sizes(&mut local, &mut remote, BUF, BUF).await;
}
