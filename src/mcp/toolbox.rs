//! `Toolbox`: agnt's [`Handler`] — the tool table (`tools`) bound to one `Host` and the facts of
//! the server that serves it. The one place where an MCP call context becomes a tool call.

use std::{path::Path, sync::Arc};

use serde_json::{Map, Value};

use super::server::{CallContext, Handler, Peer, Push};
use crate::{
    host::{
        Host,
        channel::{self, Subscription},
    },
    tools::{self, Call, NoDaemon, ServerInfo},
};

/// The tools over one host (see the module docs).
pub struct Toolbox {
    host: Arc<Host>,
    server: Arc<dyn ServerInfo>,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Toolbox {
    /// The tools over `host`, served by a server described by `server` (the daemon's facts).
    pub fn new(host: Arc<Host>, server: Arc<dyn ServerInfo>) -> Toolbox {
        Toolbox { host, server }
    }

    /// The tools over `host`, served by something that is not the daemon.
    pub fn in_process(host: Arc<Host>) -> Toolbox {
        Toolbox::new(host, Arc::new(NoDaemon))
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The facts of the server serving these tools.
    pub fn server(&self) -> &dyn ServerInfo {
        &*self.server
    }
}

impl Handler for Toolbox {
    fn tools(&self) -> &[Value] {
        tools::list()
    }

    fn call_tool(
        &self,
        name: &str,
        args: &Map<String, Value>,
        ctx: &CallContext<'_>,
    ) -> Option<Result<Value, String>> {
        let tool = tools::find(name)?;
        let call = Call {
            args,
            project: ctx.project.clone(),
            cancel: ctx.cancel,
            progress: ctx.progress,
            notify: ctx.notify,
            server: &*self.server,
            connection: ctx.connection,
        };
        Some(tools::call(&self.host, tool, &call).map_err(|e| e.0))
    }

    fn default_project(&self) -> &Path {
        self.host.default_project()
    }

    fn open(&self, push: Push) -> Option<Box<dyn Peer>> {
        let sink = Box::new(move |params: Value| push(channel::METHOD, params));
        let sub = self
            .host
            .feeds()
            .channel
            .subscribe(self.host.default_project(), sink);
        Some(Box::new(ChannelPeer {
            host: self.host.clone(),
            sub,
        }))
    }
}

/// A connection subscribed to the host's push channel.
struct ChannelPeer {
    host: Arc<Host>,
    sub: Subscription,
}

impl Peer for ChannelPeer {
    fn id(&self) -> u64 {
        self.sub.id()
    }

    fn set_project(&self, project: &Path) {
        let project = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
        self.host
            .feeds()
            .channel
            .set_project(self.sub.id(), &project);
    }
}
