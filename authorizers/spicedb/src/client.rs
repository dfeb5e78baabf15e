//! The gRPC connection to SpiceDB.
//!
//! One lazily connected tonic [`Channel`] per authorizer, shared by every call. tonic reconnects
//! it by itself, so a SpiceDB that comes back is used again without rebuilding anything.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use spicedb_rs_proto::authzed::api::v1::permissions_service_client::PermissionsServiceClient;
use spicedb_rs_proto::authzed::api::v1::schema_service_client::SchemaServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::secret::PresharedKey;

/// Which certificates a TLS connection trusts.
#[derive(Clone)]
pub(crate) enum TlsRoots {
    /// The operating system's roots.
    System,
    /// Only the CA in this PEM text.
    Pem(Vec<u8>),
}

/// Sets the gRPC metadata of every call to SpiceDB.
///
/// This is the one place where outgoing metadata is written: the preshared key today, and the
/// W3C trace context (`traceparent`) once the gateway propagates traces.
#[derive(Clone)]
pub(crate) struct CallMetadata {
    authorization: MetadataValue<Ascii>,
}

impl CallMetadata {
    /// Metadata that authenticates with `key`.
    pub(crate) fn new(key: &PresharedKey) -> Self {
        Self {
            authorization: key.bearer_header(),
        }
    }
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        Ok(request)
    }
}

impl fmt::Debug for CallMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallMetadata { authorization: <redacted> }")
    }
}

/// The transport of every SpiceDB client: the channel behind [`CallMetadata`].
pub(crate) type Transport = InterceptedService<Channel, CallMetadata>;

/// A lazily connected channel to one SpiceDB endpoint.
pub(crate) struct Connection {
    endpoint: Endpoint,
    metadata: CallMetadata,
    channel: OnceLock<Channel>,
}

impl Connection {
    /// Prepares a connection to `uri`, with TLS when `tls` is set. Does no I/O beyond loading
    /// the system roots, and needs no async runtime: the channel is made on first use.
    pub(crate) fn new(
        uri: &str,
        tls: Option<TlsRoots>,
        key: &PresharedKey,
        connect_timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        // Known limitation: no HTTP/2 keepalive pings are sent, because SpiceDB's default
        // keepalive policy answers frequent pings with GOAWAY; a connection that dies silently
        // (no RST, e.g. a partition) makes calls time out until SpiceDB's `--grpc-max-conn-age`
        // (30s by default) or the kernel closes it, after which tonic reconnects.
        let mut endpoint = Endpoint::from_shared(uri.to_owned())?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true);
        if let Some(roots) = tls {
            let config = match roots {
                TlsRoots::System => ClientTlsConfig::new().with_native_roots(),
                TlsRoots::Pem(pem) => {
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                }
            };
            endpoint = endpoint.tls_config(config)?;
        }
        Ok(Self {
            endpoint,
            metadata: CallMetadata::new(key),
            channel: OnceLock::new(),
        })
    }

    /// A client of SpiceDB's PermissionsService. Must be called inside a Tokio runtime.
    pub(crate) fn permissions(&self) -> PermissionsServiceClient<Transport> {
        PermissionsServiceClient::with_interceptor(self.channel(), self.metadata.clone())
    }

    /// A client of SpiceDB's SchemaService. Must be called inside a Tokio runtime.
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    pub(crate) fn schema(&self) -> SchemaServiceClient<Transport> {
        SchemaServiceClient::with_interceptor(self.channel(), self.metadata.clone())
    }

    fn channel(&self) -> Channel {
        // `connect_lazy` spawns the channel's worker, hence the wait for the first call: the
        // factory may run before any runtime exists (e.g. for `check-config`).
        let channel = self.channel.get_or_init(|| self.endpoint.connect_lazy());
        channel.clone()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("uri", self.endpoint.uri())
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}
