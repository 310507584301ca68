//! `message_push_config`: the push provider's configuration. As in the original, the provider
//! URL is the row of `config_type` 1; setting it again overwrites that row.

use crate::{MobileStore, db_error, now_ms};
use database::DbError;
use database::entity::push_config;
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
        push_config::Entity::insert(row)
            .on_conflict(
                OnConflict::column(push_config::Column::ConfigType)
                    .update_columns([push_config::Column::Url, push_config::Column::UpdateTime])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(db_error)?;
        self.provider_config().await?.ok_or_else(|| DbError("the provider URL was written but is not there".into()))
    }
}
