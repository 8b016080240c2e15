//! What add-ons the platform offers: each service, the majors it has
//! (exactly the ones its Debian suite packages: PostgreSQL 17 and Redis 8
//! in Debian 13), the names Heroku's catalogue gives them, and how its
//! image is made from Debian packages on the stack's base image, offline
//! from any registry (`paas-server addons:build`, also run by
//! `stack:build`). The images' entrypoints are fixed scripts: credentials
//! come in by environment, never on a command line.

use crate::runtime::{CommitSpec, Runtime};
use crate::stack::Stack;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where every add-on image keeps its data; the add-on's volume is mounted
/// here.
pub const DATA_PATH: &str = "/var/lib/paas-addon";

/// The revision of the add-on images' making (packages, entrypoints).
pub const IMAGE_REVISION: &str = "2";

/// One service the platform offers.
#[derive(Debug, PartialEq, Eq)]
pub struct Service {
    /// Its name in `addons:create` (`postgresql`, `redis`).
    pub name: &'static str,
    /// The majors there are images for; the first is the default.
    pub majors: &'static [&'static str],
    /// Default attachment name: the app gets `{var}_URL`.
    pub var: &'static str,
    pub scheme: &'static str,
    pub port: u16,
    /// The signal that stops it gracefully, and how long it is given.
    pub stop_signal: &'static str,
    pub stop_grace: Duration,
    /// Other names it is asked for by (Heroku's catalogue).
    pub aliases: &'static [&'static str],
    pub user: &'static str,
}

pub const POSTGRESQL: Service = Service {
    name: "postgresql",
    majors: &["17"],
    var: "DATABASE",
    scheme: "postgres",
    port: 5432,
    // PostgreSQL's fast shutdown: sessions are ended, the checkpoint written.
    stop_signal: "SIGINT",
    stop_grace: Duration::from_secs(30),
    aliases: &["heroku-postgresql", "postgres", "pg"],
    user: "postgres",
};

pub const REDIS: Service = Service {
    name: "redis",
    majors: &["8"],
    var: "REDIS",
    scheme: "redis",
    port: 6379,
    stop_signal: "SIGTERM",
    stop_grace: Duration::from_secs(30),
    aliases: &["heroku-redis", "rediscloud", "heroku-keyvalue"],
    user: "redis",
};

pub const SERVICES: &[&Service] = &[&POSTGRESQL, &REDIS];

/// A request for a service: `postgresql`, `postgresql:17`, Heroku's
/// `heroku-postgresql:essential-0` (a plan, not a version: the default
/// major), checked against what the platform has.
pub fn parse(spec: &str) -> Result<(&'static Service, &'static str), String> {
    let (name, rest) = spec.split_once(':').map_or((spec, None), |(n, r)| (n, Some(r)));
    let name = name.trim().to_ascii_lowercase();
    let offered = || {
        SERVICES
            .iter()
            .map(|s| s.majors.iter().map(|m| format!("{}:{m}", s.name)).collect::<Vec<_>>().join(", "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(service) = SERVICES.iter().find(|s| s.name == name || s.aliases.contains(&name.as_str())) else {
        return Err(format!("there is no add-on service {name:?}: this platform offers {}", offered()));
    };
    let heroku_plan = name.starts_with("heroku-") || name == "rediscloud";
    match rest {
        None => Ok((service, service.majors[0])),
        Some(_) if heroku_plan => Ok((service, service.majors[0])),
        Some(major) => match service.majors.iter().find(|m| **m == major) {
            Some(m) => Ok((service, m)),
            None => Err(format!(
                "{} {major} is not offered here: this platform has {} (the versions its Debian packages give)",
                service.name,
                service.majors.iter().map(|m| format!("{}:{m}", service.name)).collect::<Vec<_>>().join(", ")
            )),
        },
    }
}

pub fn by_name(name: &str) -> Option<&'static Service> {
    SERVICES.iter().copied().find(|s| s.name == name)
}

impl Service {
    /// The image of `major` as this version of the platform makes it; a
    /// new revision (a changed entrypoint) is a new tag, which
    /// `addons:upgrade` moves an add-on to.
    pub fn image(&self, major: &str) -> String {
        format!("paas/addon-{}:{major}-{IMAGE_REVISION}", self.name)
    }

    fn packages(&self, major: &str) -> Vec<String> {
        match self.name {
            "postgresql" => vec![format!("postgresql-{major}"), "ca-certificates".into()],
            _ => vec!["redis-server".into(), "redis-tools".into(), "ca-certificates".into()],
        }
    }

    /// The URL attached apps get.
    pub fn url(&self, host: &str, user: &str, password: &str, database: &str) -> String {
        match self.name {
            "postgresql" => format!("{}://{user}:{password}@{host}:{}/{database}", self.scheme, self.port),
            _ => format!("{}://default:{password}@{host}:{}", self.scheme, self.port),
        }
    }

    /// The client environment that reaches the service by name with its
    /// credentials (the password by environment, never argv).
    pub fn client_env(&self, host: &str, user: &str, password: &str, database: &str) -> Vec<(String, String)> {
        match self.name {
            "postgresql" => vec![
                ("PGHOST".into(), host.into()),
                ("PGPORT".into(), self.port.to_string()),
                ("PGUSER".into(), user.into()),
                ("PGPASSWORD".into(), password.into()),
                ("PGDATABASE".into(), database.into()),
                ("PGCONNECT_TIMEOUT".into(), "5".into()),
            ],
            _ => vec![("REDISCLI_AUTH".into(), password.into()), ("REDIS_HOST".into(), host.into())],
        }
    }

    /// The command that succeeds once the service answers.
    pub fn ready_check(&self, major: &str) -> Vec<String> {
        match self.name {
            "postgresql" => vec![format!("/usr/lib/postgresql/{major}/bin/pg_isready"), "-q".into()],
            _ => sh("test \"$(redis-cli -h \"$REDIS_HOST\" ping)\" = PONG"),
        }
    }

    fn entrypoint(&self, major: &str) -> String {
        match self.name {
            "postgresql" => POSTGRESQL_ENTRY.replace("@MAJOR@", major),
            _ => REDIS_ENTRY.to_owned(),
        }
    }
}

pub fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// Initialises the data directory once (initdb into a side folder, then
/// renamed: a crash mid-way leaves no half cluster), refuses a data
/// directory of another major, then runs the server in the foreground.
const POSTGRESQL_ENTRY: &str = r#"#!/bin/sh
set -eu
MAJOR=@MAJOR@
BIN=/usr/lib/postgresql/$MAJOR/bin
PGDATA=/var/lib/paas-addon/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${PAAS_ADDON_USER:?}" "${PAAS_ADDON_PASSWORD:?}" "${PAAS_ADDON_DATABASE:?}"
  rm -rf "$PGDATA.init"
  # The superuser has no password and logs in only on the socket inside
  # this container; the app's user owns its database and nothing more.
  "$BIN/initdb" -D "$PGDATA.init" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  printf "listen_addresses = '*'\nunix_socket_directories = '/tmp'\n" >> "$PGDATA.init/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA.init/pg_hba.conf"
  printf 'CREATE ROLE "%s" LOGIN PASSWORD '"'"'%s'"'"';\n\nCREATE DATABASE "%s" OWNER "%s";\n\n' \
    "$PAAS_ADDON_USER" "$PAAS_ADDON_PASSWORD" "$PAAS_ADDON_DATABASE" "$PAAS_ADDON_USER" \
    | "$BIN/postgres" --single -D "$PGDATA.init" -j postgres >/dev/null
  mv "$PGDATA.init" "$PGDATA"
  echo "paas: made a PostgreSQL $MAJOR data directory"
fi
found=$(cat "$PGDATA/PG_VERSION")
if [ "$found" != "$MAJOR" ]; then
  echo "paas: this data directory is PostgreSQL $found's and this image runs PostgreSQL $MAJOR: run the add-on on PostgreSQL $found again, or move the data by a backup and a restore into a new add-on" >&2
  exit 64
fi
unset PAAS_ADDON_PASSWORD
exec "$BIN/postgres" -D "$PGDATA"
"#;

/// Writes the password into a config file only Redis reads, keeps data
/// with an append-only file (fsync every second) and RDB snapshots. A
/// restored `dump.rdb` without an append-only file is loaded once with AOF
/// off and then rewritten into a new AOF before the server starts for real.
const REDIS_ENTRY: &str = r#"#!/bin/sh
set -eu
: "${PAAS_ADDON_PASSWORD:?}"
umask 077
DATA=/var/lib/paas-addon
cat > /tmp/base.conf <<CONF
protected-mode no
dir $DATA
dbfilename dump.rdb
save 3600 1 300 100 60 10000
appendfsync everysec
repl-diskless-sync-delay 0
CONF
if [ -s "$DATA/dump.rdb" ] && [ ! -d "$DATA/appendonlydir" ]; then
  # Only on a socket in this container, without a password meanwhile.
  echo "paas: loading dump.rdb into a new append-only file"
  cli="redis-cli -s /tmp/adopt.sock"
  redis-server /tmp/base.conf --port 0 --unixsocket /tmp/adopt.sock --appendonly no &
  pid=$!
  i=0
  until $cli config set appendonly yes 2>/dev/null | grep -q OK; do
    i=$((i+1)); [ $i -lt 600 ] || { echo "paas: cannot load dump.rdb" >&2; kill $pid; exit 65; }
    sleep 0.1
  done
  i=0
  while ! [ -d "$DATA/appendonlydir" ] || $cli info persistence | grep -Eq '^aof_rewrite_(in_progress|scheduled):1'; do
    i=$((i+1)); [ $i -lt 6000 ] || { echo "paas: cannot rewrite the append-only file" >&2; kill $pid; exit 65; }
    sleep 0.1
  done
  $cli shutdown save >/dev/null 2>&1 || true
  wait $pid || true
fi
cp /tmp/base.conf /tmp/redis.conf
printf 'bind * -::*\nport 6379\nappendonly yes\nrequirepass "%s"\n' "$PAAS_ADDON_PASSWORD" >> /tmp/redis.conf
unset PAAS_ADDON_PASSWORD
exec redis-server /tmp/redis.conf
"#;

/// Builds the images of every service's majors that are missing.
pub async fn build(runtime: &dyn Runtime, stack: &Stack, out: &mpsc::Sender<String>) -> Result<()> {
    for service in SERVICES {
        for major in service.majors {
            build_one(runtime, stack, service, major, out).await?;
        }
    }
    Ok(())
}

/// Builds one service's image when missing.
pub async fn build_one(runtime: &dyn Runtime, stack: &Stack, service: &Service, major: &str, out: &mpsc::Sender<String>) -> Result<()> {
    let image = service.image(major);
    if runtime.image_exists(&image).await? {
        let _ = out.send(format!("-----> Add-on image {image} exists")).await;
        return Ok(());
    }
    if !runtime.image_exists(&stack.base).await? {
        bail!("the add-on image {image} is made from the stack's base image {}, which is not on this host: run `paas-server stack:build` first", stack.base);
    }
    let started = Instant::now();
    let packages = service.packages(major);
    let _ = out.send(format!("-----> Building the add-on image {image}: apt-get install {}", packages.join(" "))).await;
    let then = format!(
        "rm -rf /var/lib/postgresql/*/main /etc/postgresql/*/main\n\
         mkdir -p {DATA_PATH}\n\
         chown {user}:{user} {DATA_PATH}\n\
         chmod 700 {DATA_PATH}\n\
         cat > /usr/local/bin/paas-addon <<'ENTRY'\n{entry}ENTRY\n\
         chmod 755 /usr/local/bin/paas-addon\n",
        user = service.user,
        entry = service.entrypoint(major),
    );
    let commit = CommitSpec {
        tag: image.clone(),
        entrypoint: Some(vec!["/usr/local/bin/paas-addon".into()]),
        working_dir: Some("/tmp".into()),
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "LANG=C.UTF-8".into(),
        ],
        user: Some(service.user.into()),
    };
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    crate::stack::install_packages(runtime, stack, &packages, &then, commit, out).await?;
    let _ = out.send(format!("       {image} ready in {:.0} s", started.elapsed().as_secs_f64())).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_asked_for_by_their_names_and_heroku_s() {
        assert_eq!(parse("postgresql").unwrap(), (&POSTGRESQL, "17"));
        assert_eq!(parse("postgresql:17").unwrap(), (&POSTGRESQL, "17"));
        assert_eq!(parse("heroku-postgresql:essential-0").unwrap(), (&POSTGRESQL, "17"));
        assert_eq!(parse("heroku-redis").unwrap(), (&REDIS, "8"));
        assert_eq!(parse("redis:8").unwrap(), (&REDIS, "8"));
        let e = parse("postgresql:9").unwrap_err();
        assert!(e.contains("postgresql:17"), "{e}");
        let e = parse("mysql").unwrap_err();
        assert!(e.contains("postgresql:17") && e.contains("redis:8"), "{e}");
    }

    #[test]
    fn urls_carry_the_credentials_and_the_alias() {
        assert_eq!(POSTGRESQL.url("postgresql-x", "u", "p", "d"), "postgres://u:p@postgresql-x:5432/d");
        assert_eq!(REDIS.url("redis-x", "u", "p", "d"), "redis://default:p@redis-x:6379");
    }
}
