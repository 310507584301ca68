//! The providers' settings while the worker runs (`provider::load`), against the mock FCM (which
//! verifies each grant's signature with the test key) and the mock UniPush provider: settings set
//! through the push config API's table take the place of the config file's and are switched to,
//! a rotated key file is picked up, new settings that do not load leave the provider working
//! with the ones before (the gauge says so), removed settings give the provider back to the
//! config file; at start-up the API's broken settings leave the provider broken (its sends fail,
//! not counted against the device) while the config file's broken settings stop the worker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use database::scratch::{Backend, ScratchDatabase};
use mobile::{MobileStore, Registration};
use mobile_push_worker::MobileSettings;
use mobile_push_worker::metrics::SendMetrics;
use mobile_push_worker::provider::Slot;
use mobile_push_worker::provider::load::ProviderLoader;
use mobile_push_worker::send::{Attempted, PushSend, Sender};
use mock_push::fcm::{TEST_PRIVATE_KEY, UNKNOWN_PRIVATE_KEY};
use mock_push::{MockFcmServer, MockProvider};
use model::{DeviceType, FcmSettings, ProviderSettings, PushProvider};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

const PHONE: &str = "fcm-settings-phone:APA91bH-kq9vZ_0123456789abcdefghij";

fn send(send_id: &str) -> PushSend {
    PushSend {
        send_id: send_id.to_owned(),
        attempt: 1,
        message_id: "1706335800123456789-abc12345".to_owned(),
        user_id: 9,
        push_id: PHONE.to_owned(),
        message_type: "order_completed".to_owned(),
        title: "订单已完成".to_owned(),
        content: "订单 #42 已送达".to_owned(),
        alarm_id: None,
        category: None,
        priority: model::Priority::Normal,
    }
}

/// A key file under the temp directory, removed when dropped.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("herald-fcm-settings-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn reference(&self) -> String {
        format!("file:{}", self.0.display())
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fcm_settings(credentials: String, mock: &MockFcmServer) -> ProviderSettings {
    ProviderSettings::Fcm(FcmSettings { credentials, project_id: None, url: Some(mock.base_url()) })
}

fn gauge(metrics: &SendMetrics) -> String {
    let text = metrics.render();
    let line =
        text.lines().find(|line| line.starts_with(r#"herald_mobile_push_provider_settings_broken{provider="fcm"}"#));
    line.unwrap_or("no gauge").rsplit(' ').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apis_settings_are_switched_to_and_a_broken_change_keeps_the_provider_working() {
    runtime::install_crypto_provider();
    let shutdown = CancellationToken::new();
    let scratch = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let store = MobileStore::on(database::connect(&scratch.settings).await.unwrap(), shutdown.clone());
    let unipush = MockProvider::start_local().unwrap();
    store.set_provider_url(&unipush.push_url()).await.unwrap();
    let fcm = MockFcmServer::start_local().unwrap();
    let device = Registration {
        user_id: 9,
        tenant_id: None,
        push_id: PHONE.into(),
        device_type: DeviceType::Android,
        subscription: None,
    };
    store.register(&device).await.unwrap();
    let key = KeyFile::new(&fcm.service_account(TEST_PRIVATE_KEY));

    // No settings anywhere: FCM is off and the phone gets its pushes from the original's provider.
    let metrics = SendMetrics::new();
    let mut loader = ProviderLoader::new(MobileSettings::default(), store.clone(), metrics.clone());
    let sender = Sender::new(store.clone(), loader.initial().await.unwrap(), metrics.clone());
    assert!(matches!(sender.providers().fcm, Slot::Off));
    assert_eq!(sender.attempt(&send("s-1")).await.unwrap(), Attempted::Sent);
    assert_eq!((unipush.mock.received().len(), fcm.mock.received().len()), (1, 0));

    // Set through the API: the next refresh switches to FCM.
    store.set_provider_settings(&fcm_settings(key.reference(), &fcm)).await.unwrap();
    loader.refresh(&sender).await;
    assert!(matches!(sender.providers().fcm, Slot::Ready(_)));
    assert_eq!(sender.attempt(&send("s-2")).await.unwrap(), Attempted::Sent);
    assert_eq!((unipush.mock.received().len(), fcm.mock.received().len()), (1, 1));
    assert_eq!(gauge(&metrics), "0");
    // Unchanged settings and secret: nothing is rebuilt (the grant cached in the client stays).
    let providers = sender.providers();
    loader.refresh(&sender).await;
    assert!(std::sync::Arc::ptr_eq(providers.fcm.ready().unwrap(), sender.providers().fcm.ready().unwrap()));

    // The key file rotated to a key FCM does not know: picked up, and refused as a credential,
    // which stops FCM's sends; rotated back, the new client starts afresh at once.
    std::fs::write(&key.0, fcm.service_account(UNKNOWN_PRIVATE_KEY)).unwrap();
    loader.refresh(&sender).await;
    let refused = sender.attempt(&send("s-3")).await.unwrap();
    assert!(matches!(&refused, Attempted::Retry { reason, .. } if reason.contains("refused")), "{refused:?}");
    let stopped = sender.attempt(&send("s-4")).await.unwrap();
    assert!(matches!(&stopped, Attempted::Retry { reason, .. } if reason.contains("resume")), "{stopped:?}");
    std::fs::write(&key.0, fcm.service_account(TEST_PRIVATE_KEY)).unwrap();
    loader.refresh(&sender).await;
    assert_eq!(sender.attempt(&send("s-5")).await.unwrap(), Attempted::Sent, "the stop is lifted with the new key");
    assert!(metrics.render().contains(r#"herald_mobile_push_provider_stopped{provider="fcm"} 0"#));

    // New settings that do not load (a file that is not there): FCM goes on with the ones before,
    // and the gauge says the settings meant for it are broken.
    let missing = format!("file:{}.missing", key.0.display());
    store.set_provider_settings(&fcm_settings(missing, &fcm)).await.unwrap();
    loader.refresh(&sender).await;
    assert_eq!(gauge(&metrics), "1");
    assert_eq!(sender.attempt(&send("s-6")).await.unwrap(), Attempted::Sent);
    let through_fcm = fcm.mock.received().len();
    store.set_provider_settings(&fcm_settings(key.reference(), &fcm)).await.unwrap();
    loader.refresh(&sender).await;
    assert_eq!(gauge(&metrics), "0");

    // Removed, with none in the config file: FCM is off, the phone back on the original's provider.
    assert!(store.remove_provider_settings(PushProvider::Fcm).await.unwrap());
    loader.refresh(&sender).await;
    assert!(matches!(sender.providers().fcm, Slot::Off));
    assert_eq!(sender.attempt(&send("s-7")).await.unwrap(), Attempted::Sent);
    assert_eq!((unipush.mock.received().len(), fcm.mock.received().len()), (2, through_fcm));

    // At start-up, the API's settings that do not load leave FCM broken: the phone's sends fail
    // with the reason, retried, and not counted against it; then they load and it sends.
    store.set_provider_settings(&fcm_settings("env:HERALD_TEST_NO_SUCH_KEY".into(), &fcm)).await.unwrap();
    let metrics = SendMetrics::new();
    let mut loader = ProviderLoader::new(MobileSettings::default(), store.clone(), metrics.clone());
    let sender = Sender::new(store.clone(), loader.initial().await.unwrap(), metrics.clone());
    assert!(matches!(sender.providers().fcm, Slot::Broken(_)));
    assert_eq!(gauge(&metrics), "1");
    let broken = sender.attempt(&send("s-8")).await.unwrap();
    assert!(
        matches!(&broken, Attempted::Retry { reason, .. } if reason.contains("settings do not load") && reason.contains("HERALD_TEST_NO_SUCH_KEY")),
        "{broken:?}"
    );
    assert_eq!(store.device(PHONE).await.unwrap().unwrap().err_count, 0, "not the device's fault");
    assert_eq!(unipush.mock.received().len(), 2, "a broken FCM does not send Android phones elsewhere");
    store.set_provider_settings(&fcm_settings(key.reference(), &fcm)).await.unwrap();
    loader.refresh(&sender).await;
    assert_eq!(sender.attempt(&send("s-9")).await.unwrap(), Attempted::Sent);
    assert_eq!(gauge(&metrics), "0");

    // The config file's settings must load at start-up, unless the API's take their place.
    let file = MobileSettings { fcm_credentials_file: format!("{}.missing", key.0.display()), ..Default::default() };
    let mut loader = ProviderLoader::new(file.clone(), store.clone(), SendMetrics::new());
    assert!(loader.initial().await.unwrap().fcm.ready().is_some(), "the API's settings apply");
    store.remove_provider_settings(PushProvider::Fcm).await.unwrap();
    let mut loader = ProviderLoader::new(file, store.clone(), SendMetrics::new());
    let err = loader.initial().await.unwrap_err().to_string();
    assert!(err.contains("fcm") && err.contains("cannot read the secret file"), "{err}");

    unipush.stop().await;
    shutdown.cancel();
    drop(store);
    scratch.drop_now().await.unwrap();
}
