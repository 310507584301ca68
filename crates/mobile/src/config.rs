//! `message_push_config`: the push providers' configuration. As in the original, the provider
//! URL is the row of `config_type` 1; setting it again overwrites that row. FCM, APNs and Web
//! Push, when an admin configures them through the API, have a row each (`config_type` 2, 3, 4,
//! [`PushProvider::config_type`]) with their settings as JSON; removing the row gives the
//! provider back to the mobile-push-worker's config file.

use crate::{MobileStore, db_error, now_ms};
use database::DbError;
use database::entity::push_config;
use model::{ProviderSettings, PushProvider};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

/// The `config_type` of the provider URL (the original's `ConfigType.Eq(1)`).
pub const PROVIDER_URL: i16 = 1;

/// The provider's configuration as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Where provider sends are posted.
    pub url: String,
    /// When it was first set, Unix ms.
    pub create_time: i64,
    /// When it was last set, Unix ms.
    pub update_time: i64,
}

/// A provider's settings as an admin set them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredProvider {
    /// The settings.
    pub settings: ProviderSettings,
    /// When they were first set, Unix ms.
    pub create_time: i64,
    /// When they were last set, Unix ms.
    pub update_time: i64,
}

impl MobileStore {
    /// The provider URL, if one was set.
    pub async fn provider_config(&self) -> Result<Option<ProviderConfig>, DbError> {
        let row = push_config::Entity::find()
            .filter(push_config::Column::ConfigType.eq(PROVIDER_URL))
            .one(&self.db)
            .await
            .map_err(db_error)?;
        Ok(row.map(|row| ProviderConfig { url: row.url, create_time: row.create_time, update_time: row.update_time }))
    }

    /// Sets the provider URL (already validated), replacing the one before.
    pub async fn set_provider_url(&self, url: &str) -> Result<ProviderConfig, DbError> {
        let now = now_ms();
        let row = push_config::ActiveModel {
            config_type: Set(PROVIDER_URL),
            url: Set(url.to_owned()),
            create_time: Set(now),
            update_time: Set(now),
            ..Default::default()
        };
        self.upsert(row, &[push_config::Column::Url, push_config::Column::UpdateTime]).await?;
        self.provider_config().await?.ok_or_else(|| DbError("the provider URL was written but is not there".into()))
    }

    /// The providers an admin configured, with their settings. A row whose settings no longer
    /// read (written by a later version, say) is left out, with a warning.
    pub async fn provider_settings(&self) -> Result<Vec<StoredProvider>, DbError> {
        let types = PushProvider::ALL.map(PushProvider::config_type);
        let rows = push_config::Entity::find()
            .filter(push_config::Column::ConfigType.is_in(types))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let mut stored = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(provider) = PushProvider::from_config_type(row.config_type) else { continue };
            let settings = row
                .settings
                .as_deref()
                .map(|json| serde_json::from_str(json).and_then(|json| ProviderSettings::from_json(provider, json)));
            match settings {
                Some(Ok(settings)) => {
                    stored.push(StoredProvider { settings, create_time: row.create_time, update_time: row.update_time })
                }
                Some(Err(err)) => tracing::warn!(
                    provider = provider.as_str(),
                    error = %err,
                    "the provider's stored settings do not read; the config file's apply"
                ),
                None => tracing::warn!(
                    provider = provider.as_str(),
                    "the provider's row holds no settings; the config file's apply"
                ),
            }
        }
        stored.sort_by_key(|stored| stored.settings.provider().config_type());
        Ok(stored)
    }

    /// Sets a provider's settings (already validated), replacing the ones before.
    pub async fn set_provider_settings(&self, settings: &ProviderSettings) -> Result<StoredProvider, DbError> {
        let provider = settings.provider();
        let now = now_ms();
        let row = push_config::ActiveModel {
            config_type: Set(provider.config_type()),
            url: Set(settings.url().unwrap_or_default().to_owned()),
            settings: Set(Some(settings.to_json().to_string())),
            create_time: Set(now),
            update_time: Set(now),
            ..Default::default()
        };
        let columns = [push_config::Column::Url, push_config::Column::Settings, push_config::Column::UpdateTime];
        self.upsert(row, &columns).await?;
        self.provider_settings()
            .await?
            .into_iter()
            .find(|stored| stored.settings.provider() == provider)
            .ok_or_else(|| DbError("the provider's settings were written but are not there".into()))
    }

    /// Writes `row`, or, when its `config_type` has a row already, `columns` of it there.
    async fn upsert(&self, row: push_config::ActiveModel, columns: &[push_config::Column]) -> Result<(), DbError> {
        push_config::Entity::insert(row)
            .on_conflict(
                OnConflict::column(push_config::Column::ConfigType).update_columns(columns.iter().copied()).to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Removes a provider's settings; whether there were any.
    pub async fn remove_provider_settings(&self, provider: PushProvider) -> Result<bool, DbError> {
        let deleted = push_config::Entity::delete_many()
            .filter(push_config::Column::ConfigType.eq(provider.config_type()))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(deleted.rows_affected > 0)
    }
}
