//! Reference data commands: users, roles, contacts and contact groups, which cases and tasks
//! then name. Each upsert replaces the row and writes one event.

use chrono::{DateTime, Utc};

use super::lookup::Handled;
use crate::commands::{self, Rejection};
use crate::db::{Reference, Tx, sql};
use crate::events::{self, kinds, kinds::Kind};

pub(super) async fn upsert_user(
    tx: &mut Tx,
    u: &commands::UpsertUser,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    for r in &u.roles {
        if !tx.found(Reference::Role, r).await? {
            return Err(
                Rejection(format!("roles: unknown role {r:?}; send upsert_role first")).into(),
            );
        }
    }
    sql("INSERT INTO users (ref, name, email, line_manager, active, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (ref) DO UPDATE SET name = excluded.name, email = excluded.email, \
         line_manager = excluded.line_manager, active = excluded.active, updated_at = excluded.updated_at")
        .bind(&u.user_ref)
        .bind(&u.name)
        .bind(&u.email)
        .bind(u.line_manager.as_deref())
        .bind(u.active)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sql("DELETE FROM user_roles WHERE user_ref = $1")
        .bind(&u.user_ref)
        .execute(&mut *tx)
        .await?;
    for r in &u.roles {
        sql("INSERT INTO user_roles (user_ref, role_ref) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&u.user_ref)
            .bind(r)
            .execute(&mut *tx)
            .await?;
    }
    let upserted = Kind::UserUpserted(kinds::UserUpserted {
        user: u.user_ref.clone(),
        roles: u.roles.clone(),
        line_manager: u.line_manager.clone(),
        active: u.active,
    });
    events::record(tx, None, now, source, upserted).await?;
    Ok(None)
}

pub(super) async fn upsert_role(
    tx: &mut Tx,
    r: &commands::UpsertRole,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    sql("INSERT INTO roles (ref, name) VALUES ($1, $2) ON CONFLICT (ref) DO UPDATE SET name = excluded.name")
        .bind(&r.role_ref)
        .bind(&r.name)
        .execute(&mut *tx)
        .await?;
    let upserted = Kind::RoleUpserted(kinds::RoleUpserted {
        role: r.role_ref.clone(),
    });
    events::record(tx, None, now, source, upserted).await?;
    Ok(None)
}

pub(super) async fn upsert_contact(
    tx: &mut Tx,
    c: &commands::UpsertContact,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    sql("INSERT INTO contacts (ref, name, email, phone, address, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (ref) DO UPDATE SET name = excluded.name, email = excluded.email, \
         phone = excluded.phone, address = excluded.address, updated_at = excluded.updated_at")
        .bind(&c.contact_ref)
        .bind(&c.name)
        .bind(c.email.as_deref())
        .bind(c.phone.as_deref())
        .bind(c.address.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let upserted = Kind::ContactUpserted(kinds::ContactUpserted {
        contact: c.contact_ref.clone(),
    });
    events::record(tx, None, now, source, upserted).await?;
    Ok(None)
}

pub(super) async fn upsert_contact_group(
    tx: &mut Tx,
    g: &commands::UpsertContactGroup,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    for m in &g.members {
        if !tx.found(Reference::Contact, m).await? {
            return Err(Rejection(format!(
                "members: unknown contact {m:?}; send upsert_contact first"
            ))
            .into());
        }
    }
    sql("INSERT INTO contact_groups (ref, name) VALUES ($1, $2) ON CONFLICT (ref) DO UPDATE SET name = excluded.name")
        .bind(&g.group_ref)
        .bind(&g.name)
        .execute(&mut *tx)
        .await?;
    sql("DELETE FROM contact_group_members WHERE group_ref = $1")
        .bind(&g.group_ref)
        .execute(&mut *tx)
        .await?;
    for m in &g.members {
        sql("INSERT INTO contact_group_members (group_ref, contact_ref) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&g.group_ref)
            .bind(m)
            .execute(&mut *tx)
            .await?;
    }
    let upserted = Kind::ContactGroupUpserted(kinds::ContactGroupUpserted {
        group: g.group_ref.clone(),
        members: g.members.len() as i64,
    });
    events::record(tx, None, now, source, upserted).await?;
    Ok(None)
}
