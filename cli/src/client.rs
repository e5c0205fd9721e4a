//! How the client commands reach the server: the address flag every one of
//! them takes, and orch-wire's one client with the CLI's options.

pub use orch_wire::{Client, RawReply, Reply, routes};

/// The address flag every client command takes, as Nomad's `-address` and
/// `NOMAD_ADDR`.
#[derive(clap::Args, Clone)]
pub struct AddressArgs {
    /// The orch server's HTTP address.
    #[arg(long, env = "ORCH_ADDR", default_value = orch_wire::DEFAULT_ADDRESS, value_name = "URL")]
    pub address: String,
}

impl AddressArgs {
    pub fn client(&self) -> Result<Client, orch_wire::ClientError> {
        Client::new(&self.address, orch_wire::ClientOptions::cli())
    }
}
