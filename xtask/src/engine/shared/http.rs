//! Bazel's HTTP remote cache: `GET`/`PUT` of `BASE/ac/KEY` and
//! `BASE/cas/SHA256`. bazel-remote serves it, and so does nginx with WebDAV
//! `PUT` enabled. Timeouts are short: a slow server costs the build little
//! before it falls back to local work.

use std::{io::Read as _, time::Duration};

use anyhow::{anyhow, Result};

use super::store::{Space, Store, Trimmed};

pub struct HttpStore {
    base: String,
    agent: ureq::Agent,
}

impl HttpStore {
    pub fn new(base: &str) -> HttpStore {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout(Duration::from_secs(20))
            .build();
        HttpStore {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn url(&self, space: Space, key: &str) -> String {
        format!("{}/{}/{key}", self.base, space.name())
    }
}

impl Store for HttpStore {
    fn get(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        let url = self.url(space, key);
        match self.agent.get(&url).call() {
            Ok(response) => {
                let mut bytes = Vec::new();
                response
                    .into_reader()
                    .read_to_end(&mut bytes)
                    .map_err(|e| anyhow!("GET {url}: {e}"))?;
                Ok(Some(bytes))
            }
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(anyhow!("GET {url}: {e}")),
        }
    }

    fn put(&self, space: Space, key: &str, bytes: &[u8]) -> Result<()> {
        let url = self.url(space, key);
        self.agent
            .put(&url)
            .send_bytes(bytes)
            .map(drop)
            .map_err(|e| anyhow!("PUT {url}: {e}"))
    }

    /// The protocol has no delete: the rebuilt step's `PUT` replaces it.
    fn forget(&self, _: Space, _: &str) {}

    /// The server keeps its own size (bazel-remote's `--max_size`).
    fn trim(&self) -> Result<Trimmed> {
        Ok(Trimmed::default())
    }
}
