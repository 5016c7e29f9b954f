//! Job priority, 0–100, and its urgency band, with the breakdown that
//! explains it. The defaults are the Python original's job analyzer:
//!
//! `score = clamp(round((branch + role + job_type) / 3 + bonuses − penalties), 0, 100)`,
//! then a cap (75) for refs that are not production, then SLA escalation of
//! the band by the time the job has waited since `created_at`.
//!
//! Everything is data ([`PriorityRules`]), overridable in `.runneriq.yml`.

use serde::Serialize;

use crate::gitlab::models::Job;
use crate::noise::Glob;

/// Urgency bands, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Urgency {
    Low,
    Medium,
    High,
    Critical,
}

impl Urgency {
    pub const ALL: [Urgency; 4] = [
        Urgency::Critical,
        Urgency::High,
        Urgency::Medium,
        Urgency::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "LOW",
            Urgency::Medium => "MEDIUM",
            Urgency::High => "HIGH",
            Urgency::Critical => "CRITICAL",
        }
    }

    fn up(self) -> Urgency {
        match self {
            Urgency::Low => Urgency::Medium,
            Urgency::Medium => Urgency::High,
            _ => Urgency::Critical,
        }
    }
}

impl std::fmt::Display for Urgency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job type: the keywords that select it (in `"<name> <stage>"`) and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct JobType {
    pub name: String,
    pub keywords: Vec<String>,
    pub weight: u32,
}

/// The priority model as data.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityRules {
    /// First matching glob wins; the default branch is always 100.
    pub branches: Vec<(Glob, u32)>,
    pub other_branch: u32,
    /// By GitLab access level: 50 owner, 40 maintainer, 30 developer, 20 reporter, 10 guest.
    pub roles: [(u32, u32); 5],
    pub unknown_role: u32,
    /// In order: the first type with a keyword in `"<name> <stage>"` wins.
    pub job_types: Vec<JobType>,
    pub other_type: u32,
    pub manual_bonus: i32,
    pub retry_bonus: i32,
    pub allow_failure_penalty: i32,
    pub experimental_refs: Vec<Glob>,
    pub experimental_penalty: i32,
    /// Refs (besides the default branch and tags) that are production.
    pub production_refs: Vec<Glob>,
    pub non_production_cap: u32,
    /// Lower bounds of CRITICAL, HIGH, MEDIUM.
    pub bands: [u32; 3],
    /// Seconds waited after which LOW, MEDIUM, HIGH go up one band.
    pub sla_s: [u64; 3],
}

fn globs(list: &[&str]) -> Vec<Glob> {
    list.iter()
        .map(|g| Glob::new(g).expect("built-in glob"))
        .collect()
}

impl Default for PriorityRules {
    fn default() -> PriorityRules {
        let branches = [
            ("main", 100),
            ("master", 100),
            ("hotfix/*", 95),
            ("release/*", 85),
            ("develop", 75),
            ("bugfix/*", 60),
            ("feature/*", 50),
        ];
        let t = |name: &str, kw: &[&str], weight: u32| JobType {
            name: name.to_string(),
            keywords: kw.iter().map(|k| k.to_string()).collect(),
            weight,
        };
        PriorityRules {
            branches: branches
                .iter()
                .map(|(g, w)| (Glob::new(g).expect("built-in glob"), *w))
                .collect(),
            other_branch: 40,
            roles: [(50, 100), (40, 100), (30, 75), (20, 50), (10, 25)],
            unknown_role: 25,
            job_types: vec![
                t(
                    "deploy",
                    &["deploy", "production", "rollout", "publish"],
                    100,
                ),
                t("release", &["release", "tag", "version"], 95),
                t(
                    "security_scan",
                    &["security", "scan", "sast", "dast", "dependency", "audit"],
                    80,
                ),
                t(
                    "performance_test",
                    &["performance", "benchmark", "load", "stress"],
                    60,
                ),
                t("build", &["build", "compile", "package", "assemble"], 75),
                t("test", &["test", "spec", "unit", "integration", "e2e"], 50),
                t(
                    "lint",
                    &["lint", "format", "style", "eslint", "rubocop", "flake8"],
                    40,
                ),
            ],
            other_type: 50,
            manual_bonus: 10,
            retry_bonus: 5,
            allow_failure_penalty: 10,
            experimental_refs: globs(&[
                "experiment/*",
                "experimental/*",
                "spike/*",
                "poc/*",
                "sandbox/*",
            ]),
            experimental_penalty: 20,
            production_refs: globs(&["main", "master", "production"]),
            non_production_cap: 75,
            bands: [90, 70, 50],
            sla_s: [300, 120, 60],
        }
    }
}

/// What the priority of one job needs besides the job.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    pub default_branch: Option<&'a str>,
    /// GitLab access level of the job's user in the project, when known.
    pub access_level: Option<u32>,
    /// Another job of the same name and pipeline ran before (a retry).
    pub retry: bool,
    /// Now, seconds since 1970.
    pub now: i64,
}

/// One term of the sum, for `explain`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Term {
    pub factor: String,
    pub value: i64,
    /// Why this value, in words.
    pub because: String,
}

/// A job's priority and how it came about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Priority {
    pub score: u8,
    pub urgency: Urgency,
    /// The urgency before SLA escalation.
    pub base_urgency: Urgency,
    /// Seconds since `created_at`, when known.
    pub waited_s: Option<u64>,
    pub job_type: String,
    pub terms: Vec<Term>,
    /// Words for the cap and the escalation, when they applied.
    pub notes: Vec<String>,
}

/// Seconds since 1970 of an RFC 3339 timestamp (`2026-01-01T10:00:00.000Z`).
pub fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn role_name(level: u32) -> &'static str {
    match level {
        50.. => "owner",
        40..=49 => "maintainer",
        30..=39 => "developer",
        20..=29 => "reporter",
        _ => "guest",
    }
}

/// The job type of `name` and `stage` under `rules`: (type, weight, keyword).
pub fn job_type<'r>(
    name: &str,
    stage: &str,
    rules: &'r PriorityRules,
) -> (&'r str, u32, Option<&'r str>) {
    let text = format!("{name} {stage}").to_lowercase();
    for t in &rules.job_types {
        if let Some(k) = t.keywords.iter().find(|k| text.contains(k.as_str())) {
            return (&t.name, t.weight, Some(k));
        }
    }
    let stage = stage.to_lowercase();
    if let Some(t) = rules.job_types.iter().find(|t| t.name == stage) {
        return (&t.name, t.weight, None);
    }
    ("other", rules.other_type, None)
}

/// The priority of `job`.
pub fn priority(job: &Job, ctx: &Context<'_>, rules: &PriorityRules) -> Priority {
    let git_ref = job.git_ref.as_str();
    let mut terms = Vec::new();
    let mut notes = Vec::new();

    let (branch, why) = if job.tag {
        (100, format!("tag {git_ref}"))
    } else if Some(git_ref) == ctx.default_branch {
        (100, format!("{git_ref} is the default branch"))
    } else if let Some((g, w)) = rules.branches.iter().find(|(g, _)| g.matches(git_ref)) {
        (*w, format!("{git_ref} matches {}", g.as_str()))
    } else {
        (rules.other_branch, format!("{git_ref}: no branch rule"))
    };
    terms.push(Term {
        factor: "branch".into(),
        value: i64::from(branch),
        because: why,
    });
    let (role, why) = match ctx.access_level {
        Some(level) => {
            let w = rules
                .roles
                .iter()
                .find(|(l, _)| level >= *l)
                .map_or(rules.unknown_role, |(_, w)| *w);
            (w, format!("{} of the project", role_name(level)))
        }
        None => (rules.unknown_role, "role unknown".to_string()),
    };
    terms.push(Term {
        factor: "role".into(),
        value: i64::from(role),
        because: why,
    });
    let (type_name, type_w, kw) = job_type(&job.name, &job.stage, rules);
    terms.push(Term {
        factor: "job_type".into(),
        value: i64::from(type_w),
        because: match kw {
            Some(k) => format!("{type_name} (keyword {k})"),
            None => type_name.to_string(),
        },
    });
    let base = f64::from(branch + role + type_w) / 3.0;
    let mut adjust: i64 = 0;
    let mut add = |factor: &str, value: i32, because: &str| {
        adjust += i64::from(value);
        terms.push(Term {
            factor: factor.into(),
            value: i64::from(value),
            because: because.into(),
        });
    };
    if job.status == "manual"
        || job.pipeline.as_ref().and_then(|p| p.source.as_deref()) == Some("web")
    {
        add("manual", rules.manual_bonus, "started by hand");
    }
    if ctx.retry {
        add("retry", rules.retry_bonus, "a retry of an earlier attempt");
    }
    if job.allow_failure {
        add(
            "allow_failure",
            -rules.allow_failure_penalty,
            "allowed to fail",
        );
    }
    if rules.experimental_refs.iter().any(|g| g.matches(git_ref)) {
        add(
            "experimental_ref",
            -rules.experimental_penalty,
            "experimental ref",
        );
    }
    let mut score = (base.round() as i64 + adjust).clamp(0, 100) as u32;
    let production = job.tag
        || Some(git_ref) == ctx.default_branch
        || rules.production_refs.iter().any(|g| g.matches(git_ref));
    if !production && score > rules.non_production_cap {
        notes.push(format!(
            "capped at {} (not a production ref)",
            rules.non_production_cap
        ));
        score = rules.non_production_cap;
    }
    let band = |s: u32| {
        if s >= rules.bands[0] {
            Urgency::Critical
        } else if s >= rules.bands[1] {
            Urgency::High
        } else if s >= rules.bands[2] {
            Urgency::Medium
        } else {
            Urgency::Low
        }
    };
    let base_urgency = band(score);
    let waited_s = job
        .created_at
        .as_deref()
        .and_then(parse_time)
        .map(|t| u64::try_from(ctx.now - t).unwrap_or(0));
    let mut urgency = base_urgency;
    if let Some(w) = waited_s {
        let limit = match base_urgency {
            Urgency::Low => Some(rules.sla_s[0]),
            Urgency::Medium => Some(rules.sla_s[1]),
            Urgency::High => Some(rules.sla_s[2]),
            Urgency::Critical => None,
        };
        if let Some(limit) = limit.filter(|l| w >= *l) {
            urgency = base_urgency.up();
            notes.push(format!(
                "{} → {} after waiting {} (SLA {})",
                base_urgency,
                urgency,
                super::duration_words(w as f64),
                super::duration_words(limit as f64)
            ));
        }
    }
    Priority {
        score: score as u8,
        urgency,
        base_urgency,
        waited_s,
        job_type: type_name.to_string(),
        terms,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, stage: &str, git_ref: &str) -> Job {
        Job {
            id: 1,
            name: name.into(),
            stage: stage.into(),
            status: "pending".into(),
            git_ref: git_ref.into(),
            created_at: Some("2026-01-01T10:00:00.000Z".into()),
            ..Job::default()
        }
    }

    fn ctx(now: i64) -> Context<'static> {
        Context {
            default_branch: Some("main"),
            access_level: Some(40),
            retry: false,
            now,
        }
    }

    const T: i64 = 1_767_261_600; // 2026-01-01T10:00:00Z

    #[test]
    fn the_originals_formula() {
        let r = PriorityRules::default();
        // (100 + 100 + 100) / 3 = 100: a maintainer's deploy on main.
        let p = priority(&job("deploy:prod", "deploy", "main"), &ctx(T), &r);
        assert_eq!((p.score, p.urgency), (100, Urgency::Critical));
        // (50 + 75 + 40) / 3 = 55: a developer's lint on a feature branch.
        let mut c = ctx(T);
        c.access_level = Some(30);
        let p = priority(&job("lint", "lint", "feature/x"), &c, &r);
        assert_eq!(
            (p.score, p.urgency, p.job_type.as_str()),
            (55, Urgency::Medium, "lint")
        );
        // Hotfix deploy by a maintainer: (95 + 100 + 100) / 3 = 98, capped at 75.
        let p = priority(&job("deploy", "deploy", "hotfix/x"), &ctx(T), &r);
        assert_eq!((p.score, p.urgency), (75, Urgency::High));
        assert!(p.notes[0].contains("capped at 75"));
        // Unknown role, allowed to fail, experimental: (40+25+50)/3 = 38 − 10 − 20 = 8.
        let mut j = job("test", "test", "spike/idea");
        j.allow_failure = true;
        let mut c = ctx(T);
        c.access_level = None;
        let p = priority(&j, &c, &r);
        assert_eq!((p.score, p.urgency), (8, Urgency::Low));
    }

    #[test]
    fn sla_escalation_one_band_after_waiting() {
        let r = PriorityRules::default();
        let mut c = ctx(T + 299);
        c.access_level = Some(10);
        let j = job("lint", "lint", "feature/x"); // (50+25+40)/3 = 38 LOW
        assert_eq!(priority(&j, &c, &r).urgency, Urgency::Low);
        c.now = T + 300;
        let p = priority(&j, &c, &r);
        assert_eq!((p.base_urgency, p.urgency), (Urgency::Low, Urgency::Medium));
        assert_eq!(p.waited_s, Some(300));
        assert_eq!(
            p.notes.last().map(String::as_str),
            Some("LOW → MEDIUM after waiting 5.0 min (SLA 5.0 min)")
        );
    }

    #[test]
    fn manual_and_retry_bonuses_and_tags() {
        let r = PriorityRules::default();
        let mut j = job("test", "test", "main"); // (100+100+50)/3 = 83
        j.status = "manual".into();
        let mut c = ctx(T);
        c.retry = true;
        assert_eq!(priority(&j, &c, &r).score, 83 + 10 + 5);
        // On a feature branch the cap of 75 wins over the bonuses.
        let mut f = job("test", "test", "feature/x");
        f.status = "manual".into();
        assert_eq!(priority(&f, &c, &r).score, 75);
        let mut t = job("build", "build", "v1.2.3");
        t.tag = true; // tags are production: (100+100+75)/3 = 92
        assert_eq!(priority(&t, &ctx(T), &r).score, 92);
    }

    #[test]
    fn job_types_in_the_originals_order() {
        let r = PriorityRules::default();
        assert_eq!(job_type("publish-docs", "build", &r).0, "deploy");
        assert_eq!(
            job_type("dependency_scanning", "test", &r).0,
            "security_scan"
        );
        assert_eq!(job_type("x", "lint", &r).0, "lint");
        // As in the original, "test" comes before "lint": a lint job in stage
        // test is a test.
        assert_eq!(job_type("lint", "test", &r).0, "test");
        assert_eq!(job_type("x", "y", &r), ("other", 50, None));
        assert_eq!(parse_time("2026-01-01T10:00:00.000Z"), Some(T));
        assert_eq!(parse_time("2026-01-01T11:00:00+01:00"), Some(T));
        assert_eq!(parse_time("yesterday"), None);
    }
}
