//! People: `users`, `users:create`, `users:remove` (platform admins),
//! `access`, `access:add`, `access:update`, `access:remove` (who has which
//! role on an app), and `audit` (who changed what).

use super::Ctx;
use crate::client::app_path;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{AccessChange, AuditEvent, Collaborator, User, UserCreate};

#[derive(Subcommand)]
pub enum Cmd {
    /// List the platform's users (platform admins only).
    Users,
    /// Add a user; their first password is asked for without echo (or
    /// read from standard input), never taken from the command line.
    #[command(name = "users:create")]
    UsersCreate {
        email: String,
        /// A platform admin: sees and may do everything, and manages users.
        #[arg(long)]
        admin: bool,
    },
    /// Remove a user, with their tokens and roles (not the last admin of the platform or of an app).
    #[command(name = "users:remove")]
    UsersRemove { email: String },
    /// Who has which role on the app.
    Access,
    /// Give someone a role on the app: viewer, developer or admin.
    #[command(name = "access:add")]
    AccessAdd {
        email: String,
        #[arg(long, value_name = "ROLE")]
        role: String,
    },
    /// Change someone's role on the app.
    #[command(name = "access:update")]
    AccessUpdate {
        email: String,
        #[arg(long, value_name = "ROLE")]
        role: String,
    },
    /// Take someone's role on the app away (not the app's last admin's).
    #[command(name = "access:remove")]
    AccessRemove { email: String },
    /// The audit log, newest first (platform admins only): who changed what, when, from where.
    Audit {
        /// How many events.
        #[arg(short = 'n', long, default_value_t = 50)]
        num: u32,
    },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let json = ctx.json;
    match cmd {
        Cmd::Users => {
            let users: Vec<User> = ctx.client()?.get(&["users"])?;
            if json {
                output::json(&users);
            } else {
                output::heading("Users");
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| vec![u.email.clone(), if u.admin { "platform admin" } else { "" }.into(), u.created_at.clone()])
                    .collect();
                output::table(&["Email", "Admin", "Since"], &rows);
            }
        }
        Cmd::UsersCreate { email, admin } => {
            let password = super::read_secret(&format!("Password for {email}: "))?;
            let user: User = ctx.client()?.post(&["users"], &[], &UserCreate { email, password, admin })?;
            if json {
                output::json(&user);
            } else {
                println!("Added {}{}", user.email, if user.admin { ", a platform admin" } else { "" });
            }
        }
        Cmd::UsersRemove { email } => {
            ctx.no_json("users:remove", "it prints one line")?;
            ctx.client()?.empty(reqwest::Method::DELETE, &["users", &email])?;
            println!("Removed {email}, with their tokens and roles");
        }
        Cmd::Access => {
            let app = ctx.app()?;
            let people: Vec<Collaborator> = ctx.client()?.get(&app_path(&app, &["access"]))?;
            if json {
                output::json(&people);
            } else {
                output::heading(&format!("{app} Access"));
                let rows: Vec<Vec<String>> = people.iter().map(|p| vec![p.email.clone(), p.role.clone()]).collect();
                output::table(&["Email", "Role"], &rows);
            }
        }
        Cmd::AccessAdd { email, role } => {
            let app = ctx.app()?;
            let c: Collaborator = ctx.client()?.post(&app_path(&app, &["access"]), &[], &AccessChange { email, role })?;
            print_role(json, &app, &c);
        }
        Cmd::AccessUpdate { email, role } => {
            let app = ctx.app()?;
            let c: Collaborator = ctx.client()?.patch(&app_path(&app, &["access", &email]), &[], &AccessChange { email: email.clone(), role })?;
            print_role(json, &app, &c);
        }
        Cmd::AccessRemove { email } => {
            ctx.no_json("access:remove", "it prints one line")?;
            let app = ctx.app()?;
            ctx.client()?.empty(reqwest::Method::DELETE, &app_path(&app, &["access", &email]))?;
            println!("{email} has no role on {app} now");
        }
        Cmd::Audit { num } => {
            let app = ctx.app_flag().map(str::to_owned);
            let mut query = vec![("limit", num.to_string())];
            if let Some(app) = app {
                query.push(("app", app));
            }
            let events: Vec<AuditEvent> = ctx.client()?.get_with(&["audit"], &query)?;
            if json {
                output::json(&events);
            } else {
                output::heading("Audit log");
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            e.at.clone(),
                            e.actor.clone(),
                            e.address.clone().unwrap_or_default(),
                            e.action.clone(),
                            e.app.clone().unwrap_or_default(),
                            e.status.to_string(),
                            e.detail.clone(),
                        ]
                    })
                    .collect();
                output::table(&["When", "Who", "From", "What", "App", "Status", "Detail"], &rows);
            }
        }
    }
    Ok(0)
}

fn print_role(json: bool, app: &str, c: &Collaborator) {
    if json {
        output::json(c);
    } else {
        println!("{} is now a {} of {app}", c.email, c.role);
    }
}
