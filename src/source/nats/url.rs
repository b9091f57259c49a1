//! `nats://HOST:PORT/SUBJECT?stream=S&partitions=N`: what a NATS source is,
//! parsed once, and the stable partition of a model id.
//!
//! The grammar (every part but HOST optional):
//!
//! ```text
//! nats://HOST[:PORT][/SUBJECT][?stream=NAME][&partitions=N]
//!   HOST        a host name, an IPv4 address or [an IPv6 address]
//!   PORT        1-65535, default 4222
//!   SUBJECT     PREFIX.> or PREFIX.* (PREFIX: one or more dot-separated
//!               tokens without wildcards), default metrics.>; a record of
//!               model M is published on PREFIX.M, and the model of a
//!               message is its subject's last token
//!   stream      the JetStream stream name ([A-Za-z0-9_-]), default METRICS
//!   partitions  how many partitions the model ids are split into, 1-4096,
//!               default 1
//! ```

use std::fmt;
use std::str::FromStr;

/// The default port of a NATS server.
pub const DEFAULT_PORT: u16 = 4222;
/// The subject read when the URL names none.
pub const DEFAULT_SUBJECT: &str = "metrics.>";
/// The stream read when the URL names none.
pub const DEFAULT_STREAM: &str = "METRICS";
/// The most partitions a URL may ask for (each is a lease and a checkpoint).
pub const MAX_PARTITIONS: u32 = 4096;

/// A parsed `nats://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsUrl {
    pub host: String,
    pub port: u16,
    /// As written (or the default): `PREFIX.>` or `PREFIX.*`.
    pub subject: String,
    pub stream: String,
    pub partitions: u32,
}

/// What is wrong with a `nats://` URL: the part, what was found and what
/// was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad NATS URL {url:?}: {part} {found:?}: expected {expected}")]
pub struct UrlError {
    pub url: String,
    pub part: &'static str,
    pub found: String,
    pub expected: String,
}

impl NatsUrl {
    /// Parses a URL of the grammar in the module docs.
    pub fn parse(text: &str) -> Result<NatsUrl, UrlError> {
        let bad = |part: &'static str, found: &str, expected: &str| UrlError {
            url: text.to_string(),
            part,
            found: found.to_string(),
            expected: expected.to_string(),
        };
        let rest = text.strip_prefix("nats://").ok_or_else(|| {
            let scheme = text.split_once("://").map_or(text, |(s, _)| s);
            bad(
                "scheme",
                scheme,
                "nats:// (e.g. nats://127.0.0.1:4222/metrics.>)",
            )
        })?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = split_host_port(authority)
            .map_err(|(part, found, expected)| bad(part, found, expected))?;
        let subject = if path.is_empty() {
            DEFAULT_SUBJECT.to_string()
        } else {
            check_subject(path).map_err(|expected| bad("subject", path, expected))?;
            path.to_string()
        };
        let mut stream = None;
        let mut partitions = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "stream" if stream.is_none() => {
                    if !is_name(value) {
                        return Err(bad(
                            "stream",
                            value,
                            "a stream name of letters, digits, '-' and '_'",
                        ));
                    }
                    stream = Some(value.to_string());
                }
                "partitions" if partitions.is_none() => {
                    let n = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_PARTITIONS).contains(n))
                        .ok_or_else(|| {
                            bad(
                                "partitions",
                                value,
                                &format!("a whole number from 1 to {MAX_PARTITIONS}"),
                            )
                        })?;
                    partitions = Some(n);
                }
                "stream" | "partitions" => {
                    return Err(bad(
                        "query",
                        key,
                        "each of stream and partitions at most once",
                    ));
                }
                other => {
                    return Err(bad("query key", other, "stream or partitions"));
                }
            }
        }
        Ok(NatsUrl {
            host: host.to_string(),
            port,
            subject,
            stream: stream.unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            partitions: partitions.unwrap_or(1),
        })
    }

    /// The server to connect to: `nats://HOST:PORT`.
    pub fn server(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// The subject without its last (wildcard) token: `metrics` of `metrics.>`.
    pub fn prefix(&self) -> &str {
        self.subject
            .rsplit_once('.')
            .map_or(self.subject.as_str(), |(p, _)| p)
    }

    /// The subject that model `model` is published on: `PREFIX.model`.
    pub fn model_subject(&self, model: &str) -> String {
        format!("{}.{model}", self.prefix())
    }

    /// The partition (0-based, below [`NatsUrl::partitions`]) that owns `model`.
    pub fn partition_of(&self, model: &str) -> u32 {
        partition_of(model, self.partitions)
    }
}

impl FromStr for NatsUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<NatsUrl, UrlError> {
        NatsUrl::parse(s)
    }
}

impl fmt::Display for NatsUrl {
    /// The canonical form, every default spelled out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}?stream={}&partitions={}",
            self.server(),
            self.subject,
            self.stream,
            self.partitions
        )
    }
}

/// The partition of a model id among `partitions`: the 64-bit FNV-1a hash
/// of its UTF-8 bytes, modulo `partitions`.
///
/// FNV-1a (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) is
/// fixed here, not std's `DefaultHasher`, so every machine and every
/// release of mmon puts a model in the same partition: checkpoints are
/// stored per partition and outlive the process that wrote them.
pub fn partition_of(model: &str, partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(partitions.max(1))) as u32
}

/// Whether a model id can be one subject token: not empty, no `.`, `*`,
/// `>` or whitespace (NATS would read those as structure).
pub fn is_subject_token(model: &str) -> bool {
    !model.is_empty()
        && !model
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
}

/// A stream, bucket or instance name: `[A-Za-z0-9_-]+`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_subject(subject: &str) -> Result<(), &'static str> {
    const EXPECTED: &str = "PREFIX.> or PREFIX.* (the model id is the last token), e.g. metrics.>";
    let (prefix, last) = subject.rsplit_once('.').ok_or(EXPECTED)?;
    if last != ">" && last != "*" {
        return Err(EXPECTED);
    }
    if prefix.split('.').all(is_subject_token) {
        Ok(())
    } else {
        Err(EXPECTED)
    }
}

type PartError<'a> = (&'static str, &'a str, &'static str);

fn split_host_port(authority: &str) -> Result<(&str, u16), PartError<'_>> {
    const HOST: &str = "a host name or address, e.g. 127.0.0.1";
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(("host", authority, HOST))?;
        match after {
            "" => (&authority[..v6.len() + 2], None),
            _ => match after.strip_prefix(':') {
                Some(port) => (&authority[..v6.len() + 2], Some(port)),
                None => return Err(("host", authority, HOST)),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && !host.contains('@')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b));
    if !host_ok {
        return Err(("host", host, HOST));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or((
            "port",
            p,
            "a port number from 1 to 65535",
        ))?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_everything_but_the_host() {
        let url = NatsUrl::parse("nats://127.0.0.1").unwrap();
        assert_eq!(
            url,
            NatsUrl {
                host: "127.0.0.1".into(),
                port: 4222,
                subject: "metrics.>".into(),
                stream: "METRICS".into(),
                partitions: 1,
            }
        );
        assert_eq!(
            url.to_string(),
            "nats://127.0.0.1:4222/metrics.>?stream=METRICS&partitions=1"
        );
        assert_eq!(url.prefix(), "metrics");
        assert_eq!(url.model_subject("churn"), "metrics.churn");
    }

    #[test]
    fn every_part_is_read() {
        let url = NatsUrl::parse("nats://[::1]:4333/prod.ml.*?partitions=8&stream=ML_2").unwrap();
        assert_eq!(url.host, "[::1]");
        assert_eq!(url.port, 4333);
        assert_eq!(url.subject, "prod.ml.*");
        assert_eq!(url.prefix(), "prod.ml");
        assert_eq!(url.stream, "ML_2");
        assert_eq!(url.partitions, 8);
        assert_eq!(url.server(), "nats://[::1]:4333");
        assert_eq!(NatsUrl::parse(&url.to_string()).unwrap(), url);
    }

    #[test]
    fn a_bad_url_names_the_part_and_what_was_expected() {
        let err = |s: &str| NatsUrl::parse(s).unwrap_err().to_string();
        assert_eq!(
            err("http://h:1/metrics.>"),
            "bad NATS URL \"http://h:1/metrics.>\": scheme \"http\": expected nats:// (e.g. nats://127.0.0.1:4222/metrics.>)"
        );
        assert!(err("nats://h:0").contains("port \"0\": expected a port number from 1 to 65535"));
        assert!(err("nats://h:x").contains("port \"x\""));
        assert!(err("nats://:4222").contains("host \"\""));
        assert!(err("nats://h/metrics").contains("subject \"metrics\": expected PREFIX.>"));
        assert!(err("nats://h/metrics.*.x").contains("subject"));
        assert!(err("nats://h/a..>").contains("subject"));
        assert!(
            err("nats://h?partitions=0")
                .contains("partitions \"0\": expected a whole number from 1 to 4096")
        );
        assert!(err("nats://h?partitions=-2").contains("partitions \"-2\""));
        assert!(err("nats://h?stream=a.b").contains("stream \"a.b\": expected a stream name"));
        assert!(err("nats://h?stream=").contains("stream \"\""));
        assert!(
            err("nats://h?strem=A").contains("query key \"strem\": expected stream or partitions")
        );
        assert!(err("nats://h?stream=A&stream=B").contains("at most once"));
    }

    #[test]
    fn partition_hash_is_fnv1a_and_stable() {
        // Known FNV-1a 64 values: these must never change between releases.
        assert_eq!(
            partition_of("", u32::MAX),
            (0xcbf2_9ce4_8422_2325u64 % u64::from(u32::MAX)) as u32
        );
        assert_eq!(
            partition_of("a", 1 << 31),
            (0xaf63_dc4c_8601_ec8cu64 % (1 << 31)) as u32
        );
        let counts = (0..1000).fold([0u32; 4], |mut c, i| {
            c[partition_of(&format!("model{i}"), 4) as usize] += 1;
            c
        });
        assert!(counts.iter().all(|&n| n > 200), "{counts:?}");
        assert_eq!(partition_of("churn", 1), 0);
    }

    #[test]
    fn subject_tokens() {
        assert!(is_subject_token("churn-v2_x"));
        for bad in ["", "a.b", "a*", ">", "a b", "a\tb"] {
            assert!(!is_subject_token(bad), "{bad:?}");
        }
    }
}
