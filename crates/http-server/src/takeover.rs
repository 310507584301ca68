//! Connections a route takes over once it answered `101 Switching Protocols`: the gateway's
//! WebSocket sessions run on the socket itself, with buffers of their own sized to what they
//! hold, rather than behind the HTTP dispatcher (two 8 KiB buffers and a channel per
//! connection, for as long as it lives).
//!
//! actix-http hands every request that asks for a WebSocket upgrade to an upgrade service,
//! together with the connection. Ours passes the request on to the app like any other request,
//! so that routing, extractors, the handler's checks and every refusal stay the app's. When the
//! answer is a 101 carrying a [`Takeover`], the service writes the 101 head, drops the
//! dispatcher's buffers and runs the takeover on the socket; any other answer is written as it
//! is, and the connection closed after it.

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1;
use actix_http::{ConnectionType, Request, Response, StatusCode};
use actix_web::HttpResponse;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use futures_util::SinkExt;
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

/// The connection a takeover runs on.
pub struct Upgraded {
    /// The socket, with the 101 answer written.
    pub io: TcpStream,
    /// What the client sent after its request head (its first frames, if it did not wait).
    pub read_buf: BytesMut,
}

type Run = Box<dyn FnOnce(Upgraded) -> LocalBoxFuture<'static, ()>>;

/// What a handler attaches to its 101 answer to run on the connection afterwards. Dropped
/// unused if the answer is never written (the client went away first).
pub struct Takeover(RefCell<Option<Run>>);

impl Takeover {
    /// A takeover that runs `run` on the upgraded connection.
    pub fn new<F, Fut>(run: F) -> Self
    where
        F: FnOnce(Upgraded) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Self(RefCell::new(Some(Box::new(move |upgraded| Box::pin(run(upgraded))))))
    }

    /// Attaches the takeover to `response`, which must be the 101 of a WebSocket handshake.
    pub fn attach(self, response: &mut HttpResponse) {
        response.extensions_mut().insert(self);
    }

    fn take(&self) -> Option<Run> {
        self.0.borrow_mut().take()
    }
}

/// Serves one upgrade request: through `app`, then either the takeover or the app's answer.
pub(crate) async fn serve_upgrade<S, B>(
    app: Rc<S>,
    (req, mut framed): (Request, Framed<TcpStream, h1::Codec>),
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let response: Response<BoxBody> = match app.call(req).await {
        Ok(answer) => {
            let (_request, response) = answer.into_parts();
            Response::from(response).map_into_boxed_body()
        }
        Err(err) => Response::from(err.error_response()),
    };
    let takeover = response.extensions().get::<Takeover>().and_then(Takeover::take);
    match takeover {
        Some(run) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let (head, _body) = response.into_parts();
            // The size the dispatcher would pass for a WebSocket answer's streaming body: the
            // head is written exactly as it would be, without a length.
            framed.send(h1::Message::Item((head, BodySize::Stream))).await?;
            // The dispatcher's write buffer (8 KiB) and codec go now, not when the connection
            // ends: a takeover brings buffers of its own.
            let actix_codec::FramedParts { io, read_buf, .. } = framed.into_parts();
            run(Upgraded { io, read_buf }).await;
        }
        _ => {
            let (mut head, body) = response.into_parts();
            head.head_mut().set_connection_type(ConnectionType::Close);
            let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
            // Head and body in one write: a client reading the refusal gets it whole.
            framed.feed(h1::Message::Item((head, BodySize::Sized(bytes.len() as u64)))).await?;
            if !bytes.is_empty() {
                framed.feed(h1::Message::Chunk(Some(bytes))).await?;
            }
            framed.send(h1::Message::Chunk(None)).await?;
        }
    }
    Ok(())
}
