//! The gRPC server bootstrap: `grpc.health.v1`, server reflection over every Jinfu API, and
//! graceful shutdown (in-flight calls finish; new ones are refused).

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic::service::Routes;

/// Serves `routes` plus health and reflection on `listener` until `shutdown` resolves.
/// `serving` names the services reported SERVING by the health service.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    file_descriptor_set: &'static [u8],
    health_reporter_setup: impl FnOnce(tonic_health::server::HealthReporter) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter_setup(reporter).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(file_descriptor_set)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = routes.add_service(health_service).add_service(reflection);
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// Marks a service SERVING in the health reporter.
pub async fn set_serving<S: NamedService>(reporter: &tonic_health::server::HealthReporter) {
    reporter.set_serving::<S>().await;
}
