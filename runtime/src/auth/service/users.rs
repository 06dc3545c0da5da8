//! Users: creating them (and the first administrator), passwords, roles, disabling.

use super::{Auth, hash};
use crate::auth::{AuthError, BOOTSTRAP_ADMIN, normalize_username};
use crate::identity::{Actor, Role, Secret, check_policy, generate_password};
use crate::store::{StoreError, User, UserChange};

impl Auth {
    /// Creates a local user. Without a password, one is generated and returned (to be shown
    /// once); a given password must meet the policy.
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        password: Option<&Secret>,
        by: &Actor,
    ) -> Result<(User, Option<Secret>), AuthError> {
        let username = normalize_username(username)?;
        let (password, generated) = self.password_or_generated(password)?;
        let hash = hash(&password).await?;
        let user = self
            .store()
            .create_user(&username, role, Some(&hash), by, self.now())
            .await?;
        Ok((user, generated.then_some(password)))
    }

    fn password_or_generated(
        &self,
        password: Option<&Secret>,
    ) -> Result<(Secret, bool), AuthError> {
        match password {
            Some(password) => {
                check_policy(password.expose())?;
                Ok((password.clone(), false))
            }
            None => Ok((generate_password(), true)),
        }
    }

    /// Creates user `admin` (an administrator) with a generated password, returned to be shown
    /// once, if and only if there is no user at all. `None` otherwise, also when another node
    /// did it at the same time.
    pub async fn bootstrap_admin(&self) -> Result<Option<Secret>, AuthError> {
        if self.store().count_users().await? > 0 {
            return Ok(None);
        }
        let password = generate_password();
        let hash = hash(&password).await?;
        let created = self
            .store()
            .bootstrap_user(BOOTSTRAP_ADMIN, &hash, &Actor::system(), self.now())
            .await?;
        Ok(created.map(|_| password))
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store().users().await?)
    }

    /// One user by name (any case).
    pub async fn user(&self, username: &str) -> Result<Option<User>, AuthError> {
        Ok(self.store().user(&username.to_lowercase()).await?)
    }

    /// Sets a user's password (generated and returned when `None`) and signs them out
    /// everywhere.
    pub async fn set_password(
        &self,
        username: &str,
        password: Option<&Secret>,
        by: &Actor,
    ) -> Result<Option<Secret>, AuthError> {
        let username = username.to_lowercase();
        let (password, generated) = self.password_or_generated(password)?;
        let hash = hash(&password).await?;
        self.store()
            .set_user_password(&username, &hash, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))?;
        Ok(generated.then_some(password))
    }

    /// Changes role, disabled and password together, all or nothing (see
    /// [`Store::change_user`](crate::store::Store::change_user)). `password`: `Some(None)`
    /// generates one, returned once.
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<Role>,
        disabled: Option<bool>,
        password: Option<Option<&Secret>>,
        by: &Actor,
    ) -> Result<(User, Option<Secret>), AuthError> {
        let username = username.to_lowercase();
        let mut generated = None;
        let mut hashed = None;
        if let Some(given) = password {
            let (password, was_generated) = self.password_or_generated(given)?;
            hashed = Some(hash(&password).await?);
            generated = was_generated.then_some(password);
        }
        let mut changes = Vec::new();
        changes.extend(role.map(UserChange::Role));
        changes.extend(disabled.map(UserChange::Disabled));
        changes.extend(hashed.as_deref().map(UserChange::PasswordHash));
        let user = self
            .store()
            .change_user(&username, &changes, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))?;
        Ok((user, generated))
    }

    /// Disables a user (their sessions are revoked) or enables them again. Refused for the last
    /// enabled administrator.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        by: &Actor,
    ) -> Result<User, AuthError> {
        let username = username.to_lowercase();
        self.store()
            .set_user_disabled(&username, disabled, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))
    }

    /// Changes a user's role, effective at their next request. Refused for the last enabled
    /// administrator.
    pub async fn set_user_role(
        &self,
        username: &str,
        role: Role,
        by: &Actor,
    ) -> Result<User, AuthError> {
        let username = username.to_lowercase();
        self.store()
            .set_user_role(&username, role, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))
    }
}

fn no_user(e: StoreError, username: &str) -> AuthError {
    match e {
        StoreError::NotFound => AuthError::NotFound(format!("no user named `{username}`")),
        other => other.into(),
    }
}
