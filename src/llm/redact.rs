//! Secrets out of every string before anything is sent to an LLM.
//!
//! CI logs are full of credentials that slipped past masking: tokens in clone
//! URLs, `export PASSWORD=...`, a private key `cat`-ed by mistake, `curl -H
//! "PRIVATE-TOKEN: ..."`, `curl -u user:pass`, `docker login -p ...`,
//! `sshpass -p ...`, `mysql -p...`, an Azure `AccountKey=...;`, a signed URL's
//! `sig=...`. [`Redactor`] replaces them with kind-tagged markers
//! (`[REDACTED:gitlab-token]`), keeping the harmless part (the variable name,
//! the header name, the URL's host, the user name) so the model can still
//! read the failure. The LLM's own answer goes through it too before it is
//! shown: it may echo what it was told or invent a secret's shape.
//!
//! Three passes: exact values we know are secret (RunnerIQ's own GitLab token,
//! the LLM key), then per-line patterns, then multi-line private key blocks
//! (a `BEGIN ... PRIVATE KEY` line and everything up to its `END` line, the
//! short last body line above an `END` line whose `BEGIN` is out of view, and
//! a whole block joined on one line). Every regex is compiled once.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Secrets shorter than this are not replaced by value (too many false hits).
const MIN_EXACT_SECRET: usize = 8;

/// How a pattern rewrites its match.
enum Rewrite {
    /// Replace the whole match with the marker.
    All,
    /// Keep capture group 1 (a key, a header name, a URL scheme), replace the
    /// rest of the match.
    KeepPrefix,
    /// `scheme://user:pass@` → `scheme://***@`.
    UrlCredentials,
}

struct Pattern {
    kind: &'static str,
    re: Regex,
    rewrite: Rewrite,
}

fn pattern(kind: &'static str, re: &str, rewrite: Rewrite) -> Pattern {
    Pattern {
        kind,
        // The patterns are constants covered by unit tests.
        re: Regex::new(re).expect("redaction pattern compiles"),
        rewrite,
    }
}

const KEY_BEGIN: &str = r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----";
const KEY_END: &str = r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----";

/// Per-line patterns, most specific first: a generic `token=` rule must not
/// eat the prefix a specific rule would have recognised.
static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    vec![
        // A key block on one line (e.g. a JSON string with `\n` escapes), or
        // the BEGIN line of a block whose body follows on the next lines.
        pattern(
            "private-key",
            &format!(r"{KEY_BEGIN}.*?(?:{KEY_END}|$)"),
            Rewrite::All,
        ),
        pattern("private-key", KEY_END, Rewrite::All),
        pattern(
            "credentials",
            r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*(?:(?:bearer|basic|token|bot|digest|negotiate)\s+)?)[^\s'\x22,;]+",
            Rewrite::KeepPrefix,
        ),
        pattern(
            "credentials",
            r"(?i)\b((?:private-token|job-token|deploy-token|x-api-key|api-key|x-auth-token|x-gitlab-token|x-vault-token)\s*[:=]\s*)[^\s'\x22,;]+",
            Rewrite::KeepPrefix,
        ),
        pattern(
            "url-credentials",
            r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@:'\x22<>]+(?::[^\s/@'\x22<>]*)?@",
            Rewrite::UrlCredentials,
        ),
        pattern(
            "gitlab-token",
            r"\b(?:glpat|gldt|glrt|glrtr|glptt|glft|glimt|glcbt|glsoat|gloas|glagent|glffct|glwt|gltst)-[0-9A-Za-z_.\-]{8,}",
            Rewrite::All,
        ),
        pattern(
            "gitlab-runner-token",
            r"\bGR1348941[0-9A-Za-z_\-]{16,}",
            Rewrite::All,
        ),
        pattern(
            "aws-access-key-id",
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
            Rewrite::All,
        ),
        pattern(
            "aws-secret",
            r#"(?i)\b((?:aws_secret_access_key|aws_session_token|secretaccesskey)["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{16,}"#,
            Rewrite::KeepPrefix,
        ),
        pattern(
            "jwt",
            r"\beyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-+/=]*",
            Rewrite::All,
        ),
        pattern(
            "slack-token",
            r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
            Rewrite::All,
        ),
        pattern(
            "slack-webhook",
            r"hooks\.slack\.com/services/[A-Za-z0-9/_\-]+",
            Rewrite::All,
        ),
        pattern(
            "github-token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})",
            Rewrite::All,
        ),
        pattern(
            "api-key",
            r"\b(?:sk-ant-[A-Za-z0-9_\-]{20,}|sk-(?:proj-)?[A-Za-z0-9_\-]{32,}|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_\-]{50,}|AIza[0-9A-Za-z_\-]{35}|dckr_pat_[A-Za-z0-9_\-]{20,})",
            Rewrite::All,
        ),
        // Passwords on a command line: `--password x`, `--token=x`; `curl -u
        // user:pass` (and `--user`, `-U`/`--proxy-user`: the user name is
        // kept); `docker login -p x` (podman, skopeo, helm registry, ...);
        // `sshpass -p x`; `mysql -px` (attached only: `mysql -p db` prompts
        // and `db` is the database). The `-p` forms are anchored on their
        // command and case-sensitive (`-P` is a port or a prompt), and a
        // command's options stop at `|`, `;` or `&`.
        pattern(
            "secret",
            concat!(
                r"(?i)(",
                r"--?(?:password|passwd|token|api-key|account-key|secret|client-secret)[ =]",
                r#"|\bcurl\b[^|;&]*?\s(?:-u\s*|--user\s+|--proxy-user\s+)['"]?[^\s:'"]*:"#,
                r"|\bsshpass(?:\s+-(?-i:[fdP]\s*\S+|[ev]))*\s+(?-i:-p)\s*",
                r"|\b(?:docker|podman|nerdctl|buildah|skopeo|oras|helm\s+registry)\s+login(?:\s+[^\s|;&]+)*?\s+(?-i:-p)(?:=|\s+)?",
                r"|\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mysqlslap|mariadb(?:-dump|-admin|-import|-show|-check)?)(?:\s+[^\s|;&]+)*?\s+(?-i:-p)",
                r#")(?:"[^"]*"|'[^']*'|[^\s'"]+)"#,
            ),
            Rewrite::KeepPrefix,
        ),
        // Signed URLs: an Azure SAS `sig=`, S3 and GCS presigned
        // `X-Amz-Signature=` / `X-Goog-Signature=` (query parameters only).
        pattern(
            "signature",
            r"(?i)([?&](?:sig|signature|x-amz-signature|x-goog-signature)=)[^\s&#'\x22<>]+",
            Rewrite::KeepPrefix,
        ),
        // `DB_PASSWORD=x`, `"token": "x"`, `passwd: x`, `?private_token=x`,
        // Azure's `AccountKey=x;` and `SharedAccessKey=x;`: the key must END
        // with the sensitive word, so `tokenizer:` and `test_password_reset:
        // FAILED` stay as they are.
        pattern(
            "secret",
            r#"(?i)(\b[A-Za-z0-9_.\-]*?(?:password|passwd|passphrase|secret|token|api[_\-]?key|apikey|access[_\-]?key|account[_\-]?key|secret[_\-]?key|private[_\-]?key|client[_\-]?secret)["']?\s*[:=]\s*)(?:"[^"]*"|'[^']*'|[^\s"',;&)]+)"#,
            Rewrite::KeepPrefix,
        ),
    ]
});

/// A whole private key block, across lines.
static KEY_BLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?s){KEY_BEGIN}.*?{KEY_END}")).expect("key block pattern compiles")
});
static KEY_BEGIN_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(KEY_BEGIN).expect("key begin pattern compiles"));
static KEY_END_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(KEY_END).expect("key end pattern compiles"));
/// A line of base64 as in a PEM body (64 characters per line).
static BASE64_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*[A-Za-z0-9+/]{60,}={0,2}\s*$").expect("base64 pattern compiles")
});

fn marker(kind: &str) -> String {
    format!("[REDACTED:{kind}]")
}

/// Replaces secrets in text that is about to leave the machine.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Exact values (RunnerIQ's GitLab token, the LLM key), longest first.
    exact: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} exact values, ***)", self.exact.len())
    }
}

impl Redactor {
    /// A redactor that also replaces each of `secrets` wherever it appears.
    pub fn new<I, S>(secrets: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut exact: Vec<String> = secrets
            .into_iter()
            .map(|s| s.as_ref().trim().to_string())
            .filter(|s| s.len() >= MIN_EXACT_SECRET)
            .collect();
        exact.sort_by_key(|s| std::cmp::Reverse(s.len()));
        exact.dedup();
        Redactor { exact }
    }

    /// One line (no `\n`): exact values, then the patterns.
    pub fn line<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for s in &self.exact {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), &marker("token")));
            }
        }
        if BASE64_LINE.is_match(&out) && !out.trim().bytes().all(|b| b.is_ascii_hexdigit()) {
            return Cow::Owned(marker("private-key"));
        }
        for p in PATTERNS.iter() {
            if !p.re.is_match(&out) {
                continue;
            }
            let replaced =
                p.re.replace_all(&out, |caps: &Captures<'_>| rewrite(p, caps))
                    .into_owned();
            out = Cow::Owned(replaced);
        }
        out
    }

    /// Numbered lines in line order: each line through [`Redactor::line`],
    /// and the body of a private key block (the lines after a `BEGIN ...
    /// PRIVATE KEY` line, up to its `END` line) replaced whole. Without its
    /// `BEGIN` line (an excerpt that starts inside the block), the body's
    /// last line, too short for the base64 pattern, is still replaced when
    /// it looks like base64 and sits right above the `END` line.
    pub fn lines(&self, lines: &[(u64, String)]) -> Vec<(u64, String)> {
        let mut out: Vec<(u64, String)> = Vec::with_capacity(lines.len());
        let mut in_block = false;
        let mut prev: Option<(u64, &str)> = None;
        for (n, text) in lines {
            let above = prev.filter(|(p, _)| p + 1 == *n).map(|(_, t)| t);
            let adjacent = above.is_some();
            prev = Some((*n, text.as_str()));
            if in_block && adjacent {
                if KEY_END_RE.is_match(text) {
                    in_block = false;
                }
                out.push((*n, marker("private-key")));
                continue;
            }
            in_block = false;
            if let Some(b) = KEY_BEGIN_RE.find(text) {
                in_block = !KEY_END_RE.is_match(&text[b.end()..]);
            } else if above.is_some_and(looks_like_key_tail) && KEY_END_RE.is_match(text) {
                if let Some(last) = out.last_mut() {
                    last.1 = marker("private-key");
                }
            }
            out.push((*n, self.line(text).into_owned()));
        }
        out
    }

    /// Any text, possibly many lines: whole key blocks first, then every line.
    pub fn text(&self, text: &str) -> String {
        let joined = KEY_BLOCK.replace_all(text, marker("private-key").as_str());
        let numbered: Vec<(u64, String)> = joined
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i as u64, l.to_string()))
            .collect();
        self.lines(&numbered)
            .into_iter()
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The last line of a PEM body: base64 only (padding at the end), at least 4
/// characters, and with a digit, `+`, `/`, `=` or a capital after the first
/// character next to a small letter, so `done`, `Done`, `DONE` or `ok` right
/// above an `END` line stay as they are.
fn looks_like_key_tail(line: &str) -> bool {
    let t = line.trim();
    let body = t.trim_end_matches('=');
    if t.len() < 4 || t.len() - body.len() > 2 || body.is_empty() {
        return false;
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return false;
    }
    let symbol = t
        .bytes()
        .any(|b| b.is_ascii_digit() || matches!(b, b'+' | b'/' | b'='));
    let inner_capital = body.bytes().skip(1).any(|b| b.is_ascii_uppercase());
    let small = body.bytes().any(|b| b.is_ascii_lowercase());
    symbol || (inner_capital && small)
}

fn rewrite(p: &Pattern, caps: &Captures<'_>) -> String {
    let whole = caps.get(0).map_or("", |m| m.as_str());
    match p.rewrite {
        Rewrite::All => marker(p.kind),
        Rewrite::KeepPrefix => {
            let prefix = caps.get(1).map_or("", |m| m.as_str());
            let value = &whole[prefix.len()..];
            if value.trim_matches(['"', '\'']).starts_with("[REDACTED") {
                // Already replaced by a more specific pattern.
                whole.to_string()
            } else {
                format!("{prefix}{}", marker(p.kind))
            }
        }
        Rewrite::UrlCredentials => {
            let scheme = caps.get(1).map_or("", |m| m.as_str());
            format!("{scheme}***@")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        Redactor::new(["glpat-the-runneriq-own-token", "MyOwnSecretValue123"]).text(text)
    }

    /// `secret` is gone, and the marker of `kind` took its place.
    fn gone(text: &str, secret: &str, kind: &str) {
        let out = r(text);
        assert!(!out.contains(secret), "{secret:?} left in {out:?}");
        assert!(
            out.contains(&format!("[REDACTED:{kind}]")),
            "no {kind} marker in {out:?}"
        );
    }

    #[test]
    fn gitlab_tokens() {
        for t in [
            "glpat-AbCdEf1234567890xYzW",
            "glpat-0123456789abcdefghijklmnopq.01.0w1a2b3c4",
            "gldt-Zx9Yw8Vu7Ts6Rq5Po4Nm",
            "glrt-t1_AbCdEfGhIjKlMnOpQrSt",
            "glptt-0123456789abcdef0123456789abcdef01234567",
            "glft-aBcDeFgHiJkLmNoPqRsT",
            "glimt-abcdefghijklmnopqrstuvwxy",
            "glcbt-64_AbCdEfGhIjKlMnOpQrSt",
            "glsoat-abcdefghijklmnopqrst",
            "gloas-0123456789abcdef0123456789abcdef",
            "glagent-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefGHIJ",
        ] {
            gone(
                &format!("git clone with token {t} failed"),
                t,
                "gitlab-token",
            );
        }
        gone(
            "gitlab-runner register --registration-token GR1348941aBcDeFgHiJkLmNoPqRsT",
            "GR1348941aBcDeFgHiJkLmNoPqRsT",
            "gitlab-runner-token",
        );
    }

    #[test]
    fn exact_values_passed_in() {
        gone(
            "echo glpat-the-runneriq-own-token",
            "the-runneriq-own-token",
            "token",
        );
        gone(
            "value MyOwnSecretValue123 here",
            "MyOwnSecretValue123",
            "token",
        );
        // Too short to replace by value.
        assert_eq!(Redactor::new(["abc"]).text("abc abc"), "abc abc");
    }

    #[test]
    fn aws_keys() {
        gone(
            "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLE",
            "aws-access-key-id",
        );
        gone(
            "key ASIAY34FZKBOKMUTVV7A used",
            "ASIAY34FZKBOKMUTVV7A",
            "aws-access-key-id",
        );
        gone(
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws-secret",
        );
        let out = r("AWS_SECRET_ACCESS_KEY: \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"");
        assert!(out.starts_with("AWS_SECRET_ACCESS_KEY: "), "{out}");
        assert!(!out.contains("wJalrXUtnFEMI"), "{out}");
    }

    #[test]
    fn private_key_blocks_per_line_and_joined() {
        let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";
        // Lines as the prompt builder gives them.
        let lines: Vec<(u64, String)> = [
            "$ cat deploy_key",
            "-----BEGIN RSA PRIVATE KEY-----",
            body,
            "VQr1RzAN",
            "-----END RSA PRIVATE KEY-----",
            "ssh: connect to host example.com port 22: Connection refused",
        ]
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.to_string()))
        .collect();
        let out = Redactor::default().lines(&lines);
        assert_eq!(out[0].1, "$ cat deploy_key");
        for (_, l) in &out[1..5] {
            assert_eq!(l, "[REDACTED:private-key]");
        }
        assert_eq!(out[5].1, lines[5].1);
        // A body line alone (the BEGIN line was not among the lines sent).
        gone(body, body, "private-key");
        // A block joined on one line, and one split across the text.
        gone(
            &format!(
                "key: \"-----BEGIN OPENSSH PRIVATE KEY-----\\n{body}\\n-----END OPENSSH PRIVATE KEY-----\" ok"
            ),
            body,
            "private-key",
        );
        let text = format!(
            "  10 | -----BEGIN PRIVATE KEY-----\n  11 | {body}\n  12 | abc\n  13 | -----END PRIVATE KEY-----\n  14 | done"
        );
        let out = r(&text);
        assert!(!out.contains(body) && !out.contains("| abc"), "{out}");
        assert!(out.ends_with("  14 | done"), "{out}");
        // A hex digest on its own line is not key material.
        let digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(r(digest), digest);
        let digest = format!("sha256:{digest}");
        assert_eq!(r(&digest), digest);
    }

    #[test]
    fn jwts() {
        let jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        gone(&format!("CI_JOB_JWT_V2={jwt}"), jwt, "jwt");
        gone(
            &format!("id_token {jwt} rejected"),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r",
            "jwt",
        );
    }

    #[test]
    fn password_style_assignments_keep_the_key() {
        assert_eq!(r("password=hunter2"), "password=[REDACTED:secret]");
        assert_eq!(
            r("DB_PASSWORD=hunter2 rest"),
            "DB_PASSWORD=[REDACTED:secret] rest"
        );
        assert_eq!(r("  passwd: s3cr3t!"), "  passwd: [REDACTED:secret]");
        assert_eq!(r("secret=abc123def"), "secret=[REDACTED:secret]");
        assert_eq!(r("token=abcdef"), "token=[REDACTED:secret]");
        assert_eq!(r("api_key=abcdef1234"), "api_key=[REDACTED:secret]");
        assert_eq!(r("API-KEY: abcdef1234"), "API-KEY: [REDACTED:credentials]");
        assert_eq!(
            r(r#"{"password": "hunter2", "user": "bob"}"#),
            r#"{"password": [REDACTED:secret], "user": "bob"}"#
        );
        assert_eq!(
            r("GET /api?private_token=abc123&page=2"),
            "GET /api?private_token=[REDACTED:secret]&page=2"
        );
        assert_eq!(
            r("mysql --password=hunter2 -h db"),
            "mysql --password=[REDACTED:secret] -h db"
        );
        assert_eq!(r("login --token abc123"), "login --token [REDACTED:secret]");
    }

    #[test]
    fn curl_user_and_password_keeps_the_user() {
        assert_eq!(
            r("$ curl -fsS -u deployer:hunter2pass https://nexus.example.com/x"),
            "$ curl -fsS -u deployer:[REDACTED:secret] https://nexus.example.com/x"
        );
        assert_eq!(
            r("curl --user deployer:hunter2pass -O https://x/a.tgz"),
            "curl --user deployer:[REDACTED:secret] -O https://x/a.tgz"
        );
        assert_eq!(
            r("curl -udeployer:hunter2pass https://x"),
            "curl -udeployer:[REDACTED:secret] https://x"
        );
        assert_eq!(
            r("curl -u \"deployer:hunter2pass\" https://x"),
            "curl -u \"deployer:[REDACTED:secret]\" https://x"
        );
        assert_eq!(
            r("curl -u :glpat-AbCdEf1234567890xYzW https://x"),
            "curl -u :[REDACTED:gitlab-token] https://x"
        );
        assert_eq!(
            r("curl -x http://proxy:3128 -U proxyuser:proxypass https://x"),
            "curl -x http://proxy:3128 -U proxyuser:[REDACTED:secret] https://x"
        );
        assert_eq!(
            r("curl --proxy-user proxyuser:proxypass https://x"),
            "curl --proxy-user proxyuser:[REDACTED:secret] https://x"
        );
        // No password given (curl prompts), another command's `-u`, and a
        // header that merely contains a colon.
        for line in [
            "curl -u deployer https://nexus.example.com:8443/x",
            "curl -sS https://x | docker run -u 1000:1000 img",
            "curl https://x && docker run -u 1000:1000 img",
            "docker run -u 1000:1000 img",
            "curl --user-agent 'a:b' https://x",
            "curl -H 'Accept: text/plain' https://x:8080/",
        ] {
            assert_eq!(r(line), line);
        }
    }

    #[test]
    fn registry_logins_with_a_password_flag() {
        assert_eq!(
            r("$ docker login -u gitlab-ci-token -p s3cr3tvalue registry.example.com"),
            "$ docker login -u gitlab-ci-token -p [REDACTED:secret] registry.example.com"
        );
        assert_eq!(
            r("docker login -u bob -p=s3cr3tvalue registry.example.com"),
            "docker login -u bob -p=[REDACTED:secret] registry.example.com"
        );
        assert_eq!(
            r("docker login -u bob -ps3cr3tvalue registry.example.com"),
            "docker login -u bob -p[REDACTED:secret] registry.example.com"
        );
        assert_eq!(
            r("docker login --username bob --password s3cr3tvalue r.example.com"),
            "docker login --username bob --password [REDACTED:secret] r.example.com"
        );
        assert_eq!(
            r("docker login -u bob --password=s3cr3tvalue r.example.com"),
            "docker login -u bob --password=[REDACTED:secret] r.example.com"
        );
        assert_eq!(
            r("docker login -u bob --password \"s3cr3t value\" r.example.com"),
            "docker login -u bob --password [REDACTED:secret] r.example.com"
        );
        assert_eq!(
            r("podman login -u bob -p s3cr3tvalue quay.io"),
            "podman login -u bob -p [REDACTED:secret] quay.io"
        );
        assert_eq!(
            r("helm registry login r.example.com -u bob -p s3cr3tvalue"),
            "helm registry login r.example.com -u bob -p [REDACTED:secret]"
        );
        for line in [
            "docker login -u bob r.example.com",
            "echo \"$PASS\" | docker login -u bob --password-stdin r.example.com",
            "docker run -p 8080:80 nginx",
            "docker login -u bob --password-stdin r.example.com && docker run -p 80:80 x",
        ] {
            assert_eq!(r(line), line);
        }
    }

    #[test]
    fn sshpass_password_flag() {
        assert_eq!(
            r("sshpass -p s3cr3tvalue ssh -p 2222 deploy@host uptime"),
            "sshpass -p [REDACTED:secret] ssh -p 2222 deploy@host uptime"
        );
        assert_eq!(
            r("sshpass -ps3cr3tvalue scp a deploy@host:/tmp"),
            "sshpass -p[REDACTED:secret] scp a deploy@host:/tmp"
        );
        assert_eq!(
            r("sshpass -v -p 's3cr3t value' rsync -a . host:/srv"),
            "sshpass -v -p [REDACTED:secret] rsync -a . host:/srv"
        );
        // The password from a file or the environment; ssh's own `-p` port.
        for line in [
            "sshpass -f /run/pw ssh -p 2222 deploy@host",
            "sshpass -e ssh -p 2222 deploy@host",
            "ssh -p 2222 deploy@host",
        ] {
            assert_eq!(r(line), line);
        }
    }

    #[test]
    fn mysql_attached_password_but_not_the_database() {
        assert_eq!(
            r("$ mysql -h db -u root -ps3cr3tvalue app < dump.sql"),
            "$ mysql -h db -u root -p[REDACTED:secret] app < dump.sql"
        );
        assert_eq!(
            r("mysqldump -uroot -p's3cr3t value' app > dump.sql"),
            "mysqldump -uroot -p[REDACTED:secret] app > dump.sql"
        );
        assert_eq!(
            r("mariadb -u root -ps3cr3tvalue -e 'select 1'"),
            "mariadb -u root -p[REDACTED:secret] -e 'select 1'"
        );
        // `-p` alone prompts and the next word is the database; `-P` is the
        // port.
        for line in [
            "mysql -h db -u root -p app",
            "mysql -h db -u root -p",
            "mysql -h db -P 3306 -u root app",
            "mysql -h db -P3306 -u root app",
            "mysql -h db -u root",
        ] {
            assert_eq!(r(line), line);
        }
    }

    #[test]
    fn azure_account_keys_and_signed_urls() {
        let conn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net";
        assert_eq!(
            r(conn),
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[REDACTED:secret];EndpointSuffix=core.windows.net"
        );
        assert_eq!(
            r("az storage blob upload --account-name acct --account-key abcDEF123+/= -f x"),
            "az storage blob upload --account-name acct --account-key [REDACTED:secret] -f x"
        );
        assert_eq!(
            r(
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abcDEF123+/=;EntityPath=q"
            ),
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=[REDACTED:secret];EntityPath=q"
        );
        assert_eq!(
            r(
                "PUT https://acct.blob.core.windows.net/c/f?sv=2022-11-02&ss=b&sig=abc%2Bdef%3D&se=2026-01-01T00%3A00%3A00Z failed"
            ),
            "PUT https://acct.blob.core.windows.net/c/f?sv=2022-11-02&ss=b&sig=[REDACTED:signature]&se=2026-01-01T00%3A00%3A00Z failed"
        );
        assert_eq!(
            r(
                "GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0a1b2c3d4e5f 403"
            ),
            "GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=[REDACTED:signature] 403"
        );
        for line in [
            "AccountName=acct;EndpointSuffix=core.windows.net",
            "GET https://example.com/search?q=signal&page=2",
            "gpg: Good signature from \"Jane <jane@example.com>\"",
        ] {
            assert_eq!(r(line), line);
        }
    }

    #[test]
    fn pem_short_last_line_above_an_end_line_without_its_begin() {
        let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";
        let numbered = |from: u64, ls: &[&str]| -> Vec<(u64, String)> {
            ls.iter()
                .enumerate()
                .map(|(i, l)| (from + i as u64, l.to_string()))
                .collect()
        };
        // An excerpt around the END line: the BEGIN line is out of view.
        for tail in ["VQr1RzAN", "QUFBQUE=", "ab+/", "xYzAbCdEfG", "  9fQ==  "] {
            let out = Redactor::default().lines(&numbered(
                40,
                &[body, tail, "-----END RSA PRIVATE KEY-----", "$ ssh-add -"],
            ));
            let texts: Vec<&str> = out.iter().map(|(_, t)| t.as_str()).collect();
            assert_eq!(
                texts,
                [
                    "[REDACTED:private-key]",
                    "[REDACTED:private-key]",
                    "[REDACTED:private-key]",
                    "$ ssh-add -"
                ],
                "{tail:?}"
            );
        }
        // The same through `text` (an LLM answer quoting the end of a key).
        let out = r("the key ends with\nVQr1RzAN\n-----END OPENSSH PRIVATE KEY-----");
        assert!(!out.contains("VQr1RzAN"), "{out}");
        // Ordinary short lines above an END line, a line not directly above
        // it, and a base64-looking line above something else stay.
        for above in ["done", "Done", "DONE", "ok", "abc", "echo hi", "key saved."] {
            let out =
                Redactor::default().lines(&numbered(7, &[above, "-----END EC PRIVATE KEY-----"]));
            assert_eq!(out[0].1, above);
        }
        let out = Redactor::default().lines(&[
            (3, "VQr1RzAN".to_string()),
            (5, "-----END PRIVATE KEY-----".to_string()),
        ]);
        assert_eq!(out[0].1, "VQr1RzAN");
        let out = Redactor::default().lines(&numbered(1, &["VQr1RzAN", "all done"]));
        assert_eq!(out[0].1, "VQr1RzAN");
    }

    #[test]
    fn urls_with_credentials() {
        assert_eq!(
            r(
                "fatal: unable to access 'https://gitlab-ci-token:s3cr3tvalue@gitlab.example.com/g/p.git/'"
            ),
            "fatal: unable to access 'https://***@gitlab.example.com/g/p.git/'"
        );
        assert_eq!(r("https://user:pass@host/x"), "https://***@host/x");
        assert_eq!(
            r("postgres://app:hunter2@db:5432/app"),
            "postgres://***@db:5432/app"
        );
    }

    #[test]
    fn auth_headers() {
        assert_eq!(
            r("curl -H 'Authorization: Bearer abc.def.ghi' https://x"),
            "curl -H 'Authorization: Bearer [REDACTED:credentials]' https://x"
        );
        assert_eq!(
            r("curl --header \"PRIVATE-TOKEN: abcdef123456\" https://x"),
            "curl --header \"PRIVATE-TOKEN: [REDACTED:credentials]\" https://x"
        );
        assert_eq!(
            r("JOB-TOKEN: abcdef123456"),
            "JOB-TOKEN: [REDACTED:credentials]"
        );
    }

    #[test]
    fn slack_github_and_other_api_tokens() {
        gone(
            "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxb-123456789012",
            "slack-token",
        );
        gone(
            "post to https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
            "XXXXXXXXXXXXXXXX",
            "slack-webhook",
        );
        gone(
            "remote: ghp_0123456789abcdefABCDEF0123456789abcd",
            "ghp_0123456789abcdefABCDEF0123456789abcd",
            "github-token",
        );
        gone(
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP",
            "github_pat_11ABCDEFG",
            "github-token",
        );
        gone(
            "using sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz",
            "sk-ant-api03",
            "api-key",
        );
        gone(
            "//registry.npmjs.org/:_authToken npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "npm_AbCdEf",
            "api-key",
        );
    }

    #[test]
    fn ordinary_log_lines_are_untouched() {
        for line in [
            "error[E0308]: mismatched types",
            "  --> src/main.rs:3:5",
            "test_password_reset: FAILED",
            "tokenizer: loaded 32000 tokens",
            "FAILED tests/test_auth.py::test_login - AssertionError: assert 401 == 200",
            "Downloading https://files.pythonhosted.org/packages/ab/cd/numpy-2.0.whl (18.2 MB)",
            "ssh://git@example.com:22 is not a credential-bearing URL we care about",
            "Fetching changes with git depth set to 20...",
            "$ export PWD=/builds/group/project",
            "npm ERR! code E404",
            "section_start:1767225600:resolve_secrets",
            "Resolving secrets",
            "make: *** [Makefile:12: all] Error 2",
            "warning: unused variable: `token`",
            "Author: Jane Doe <jane@example.com>",
            "commit 0ff3ae198f8601a285adcf5c0fff204ee6fba5fd",
            "$ gcc -p -O2 -o app main.c",
            "$ pytest -p no:cacheprovider -q tests/",
            "$ ls -la",
            "$ mysql -h db -u root -e 'show databases'",
            "$ ssh -p 2222 -o StrictHostKeyChecking=no deploy@host",
            "$ docker run -p 5432:5432 -u 1000:1000 postgres:16",
            "$ curl -fsSL https://example.com/install.sh -o install.sh",
        ] {
            let out = r(line);
            if line.starts_with("ssh://git@") {
                // A user name without password is still replaced: harmless.
                assert_eq!(
                    out,
                    "ssh://***@example.com:22 is not a credential-bearing URL we care about"
                );
                continue;
            }
            assert_eq!(out, line);
        }
    }

    #[test]
    fn debug_does_not_show_the_secrets() {
        let d = format!("{:?}", Redactor::new(["supersecretvalue"]));
        assert!(!d.contains("supersecret"), "{d}");
    }
}
