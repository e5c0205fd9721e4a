//! The engine, the linker and the call path every plugin kind shares.

use crate::cache::Cache;
use crate::sandbox::{MemoryBudget, Reclaim, Refusal, Sandbox};
use crate::{Digest, Limits, MemoryScope, PluginError};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, Store, Trap};

/// Settings that apply to every plugin of one runtime (the engine's own
/// settings); per-plugin settings are [`Limits`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are kept across restarts; `None` keeps
    /// them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Meter fuel, so that plugins with a `fuel` limit can be run. Costs
    /// some speed for every plugin of the runtime.
    pub fuel: bool,
    /// Wasm stack each instance may use, in bytes.
    pub max_stack_bytes: usize,
    /// How often deadlines are checked in wasm code; a call overruns its
    /// deadline by at most about this much (waits in the host end at the
    /// deadline itself).
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            fuel: false,
            max_stack_bytes: 512 << 10,
            epoch_tick: Duration::from_millis(2),
        }
    }
}

/// Loads, checks and runs plugin components. Cheap to clone; clones share
/// the engine and the compiled-component cache.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// WASI only: what scorers are linked against.
    linker: Linker<Sandbox>,
    /// WASI and the driver capabilities: what drivers are linked against.
    /// Which capabilities a driver may use is decided by its grants, when it
    /// is loaded and again on every call.
    driver_linker: Linker<Sandbox>,
    cache: Cache,
    config: RuntimeConfig,
}

/// A compiled component, not yet checked against any world.
#[derive(Clone)]
pub struct Component {
    pub(crate) name: String,
    pub(crate) digest: Digest,
    pub(crate) size: usize,
    pub(crate) component: wasmtime::component::Component,
}

impl Component {
    /// The name the plugin was loaded under (a built-in's name or a path).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The sha256 of its bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }
    /// Size of its bytes.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// What one call cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Making the fresh instance.
    pub instantiate: Duration,
    /// The call itself, lifting and lowering included.
    pub call: Duration,
    /// Linear memory the instance grew to, in bytes.
    pub memory_bytes: usize,
    /// Fuel burnt, when the runtime meters fuel.
    pub fuel_used: Option<u64>,
}

impl Runtime {
    /// Makes an engine with epoch interruption and the given settings, a
    /// linker with WASI 0.2 (which grants nothing: see [`Sandbox`], and
    /// whose waits end at the call's deadline) for scorers, and one that adds
    /// the driver capabilities for drivers.
    pub fn new(config: RuntimeConfig) -> Result<Self, PluginError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel)
            .max_wasm_stack(config.max_stack_bytes);
        let engine = Engine::new(&wasm).map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        let linker = wasi_linker(&engine)?;
        let mut driver_linker = wasi_linker(&engine)?;
        crate::driver::link_capabilities(&mut driver_linker)
            .map_err(|e| PluginError::Runtime(format!("linking the driver capabilities: {e:#}")))?;
        start_ticker(&engine, config.epoch_tick)
            .map_err(|e| PluginError::Runtime(format!("starting the deadline ticker: {e}")))?;
        let cache = Cache::new(&engine, config.cache_dir.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                driver_linker,
                cache,
                config,
            }),
        })
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Loads the component at `path`; the path is also its name.
    pub fn load_file(&self, path: &Path, limits: &Limits) -> Result<Component, PluginError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            plugin: name.clone(),
            path: name.clone(),
            source,
        })?;
        self.load(&name, &bytes, limits)
    }

    /// Compiles `bytes` under the name `name`, or takes the compiled code
    /// from the cache when these exact bytes were compiled before.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<Component, PluginError> {
        let digest = Digest::of(bytes);
        let plugin = name.to_owned();
        let component = match self.inner.cache.get(&self.inner.engine, &digest) {
            Some(c) => c,
            None => {
                check_is_component(&plugin, digest, bytes)?;
                let c = self.compile(&plugin, digest, bytes, limits.compile_timeout)?;
                self.inner.cache.put(digest, &c);
                c
            }
        };
        Ok(Component {
            name: plugin,
            digest,
            size: bytes.len(),
            component,
        })
    }

    /// Compiles on another thread so that a component built to be slow to
    /// compile cannot hold the caller past `timeout`.
    fn compile(
        &self,
        plugin: &str,
        digest: Digest,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<wasmtime::component::Component, PluginError> {
        let (tx, rx) = mpsc::channel();
        let engine = self.inner.engine.clone();
        let bytes = bytes.to_vec();
        std::thread::Builder::new()
            .name(format!("compile {}", digest.short()))
            .spawn(move || {
                let _ = tx.send(wasmtime::component::Component::new(&engine, &bytes));
            })
            .map_err(|e| PluginError::Runtime(format!("spawning a compile thread: {e}")))?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(PluginError::NotAComponent {
                plugin: plugin.to_owned(),
                digest,
                detail: format!("{e:#}"),
            }),
            Err(_) => Err(PluginError::CompileTimeout {
                plugin: plugin.to_owned(),
                digest,
                limit: timeout,
            }),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<Sandbox> {
        &self.inner.linker
    }

    pub(crate) fn driver_linker(&self) -> &Linker<Sandbox> {
        &self.inner.driver_linker
    }

    /// Runs one call with `limits` on an idle instance from `pool`, or a new
    /// one made by `instantiate` (its memory counted in the pool's budget).
    /// An instance whose call failed in any way (trap, deadline, memory,
    /// fuel) is dropped with its store, so a fault never leaks into the next
    /// call and its memory goes back to the budget; one that succeeded goes
    /// back to the pool.
    pub(crate) fn call<I, R>(
        &self,
        plugin: &Component,
        limits: &Limits,
        pool: &Pool<I>,
        instantiate: impl FnOnce(&mut Store<Sandbox>) -> wasmtime::Result<I>,
        call: impl FnOnce(&I, &mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> Result<(R, CallStats), PluginError> {
        let fuel = self.fuel_for(plugin, limits)?;
        let started = Instant::now();
        let mut warm = match pool.take() {
            Some(warm) => warm,
            None => {
                let sandbox = Sandbox::deny_all(limits, Arc::clone(&pool.budget), started);
                let mut store = Store::new(&self.inner.engine, sandbox);
                store.limiter(|s| &mut s.limiter);
                store.epoch_deadline_trap();
                self.arm(&mut store, limits, fuel, started)?;
                match instantiate(&mut store) {
                    Ok(instance) => Warm { store, instance },
                    Err(e) => return Err(self.classify(plugin, limits, fuel, &store, e)),
                }
            }
        };
        let instantiated = Instant::now();
        self.arm(&mut warm.store, limits, fuel, instantiated)?;
        warm.store.data_mut().start_call();
        let result = call(&warm.instance, &mut warm.store);
        let done = Instant::now();
        let stats = CallStats {
            instantiate: instantiated - started,
            call: done - instantiated,
            memory_bytes: warm.store.data().limiter.peak,
            fuel_used: fuel.and_then(|f| Some(f - warm.store.get_fuel().ok()?)),
        };
        match result {
            Ok(r) => {
                if !warm.store.data().worn_out() {
                    pool.put(warm);
                }
                Ok((r, stats))
            }
            Err(e) => Err(self.classify(plugin, limits, fuel, &warm.store, e)),
        }
    }

    /// Sets the deadline and fuel of the next call, which starts `now`: the
    /// epoch deadline for wasm code, and the instant waits in the host end.
    fn arm(
        &self,
        store: &mut Store<Sandbox>,
        limits: &Limits,
        fuel: Option<u64>,
        now: Instant,
    ) -> Result<(), PluginError> {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        // One tick more than the deadline: the first tick may come at once.
        let ticks = limits.deadline.as_nanos().div_ceil(tick) + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store
            .data_mut()
            .set_deadline(crate::deadline::after(now, limits.deadline));
        if let Some(fuel) = fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| PluginError::Runtime(format!("setting fuel: {e:#}")))?;
        }
        Ok(())
    }

    fn fuel_for(&self, plugin: &Component, limits: &Limits) -> Result<Option<u64>, PluginError> {
        match (self.inner.config.fuel, limits.fuel) {
            (true, fuel) => Ok(Some(fuel.unwrap_or(u64::MAX))),
            (false, None) => Ok(None),
            (false, Some(_)) => Err(PluginError::Config {
                plugin: plugin.name.clone(),
                detail: "a fuel limit is set but the runtime does not meter fuel; set `fuel = true` in the [plugins] section".into(),
            }),
        }
    }

    /// Turns what a failed call left behind into an error that says what
    /// the plugin did.
    fn classify(
        &self,
        plugin: &Component,
        limits: &Limits,
        fuel: Option<u64>,
        store: &Store<Sandbox>,
        error: wasmtime::Error,
    ) -> PluginError {
        let name = plugin.name.clone();
        let digest = plugin.digest;
        let limiter = &store.data().limiter;
        match limiter.refused {
            Some(Refusal::Instance { requested }) => {
                return PluginError::MemoryLimit {
                    plugin: name,
                    digest,
                    requested,
                    cap: limiter.cap,
                    scope: MemoryScope::Instance,
                };
            }
            Some(Refusal::Plugin {
                requested,
                together,
                total,
            }) => {
                return PluginError::MemoryLimit {
                    plugin: name,
                    digest,
                    requested,
                    cap: total,
                    scope: MemoryScope::Plugin { together },
                };
            }
            None => {}
        }
        if crate::deadline::passed_in_host(&error) {
            return PluginError::Deadline {
                plugin: name,
                digest,
                deadline: limits.deadline,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginError::Deadline {
                plugin: name,
                digest,
                deadline: limits.deadline,
            },
            Some(Trap::StackOverflow) => PluginError::StackOverflow {
                plugin: name,
                digest,
                cap: self.inner.config.max_stack_bytes,
            },
            Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                plugin: name,
                digest,
                fuel: fuel.unwrap_or_default(),
            },
            Some(trap) => PluginError::Trap {
                plugin: name,
                digest,
                trap: trap.to_string(),
                stderr: store.data().last_stderr_line(),
            },
            None => PluginError::Trap {
                plugin: name,
                digest,
                trap: format!("{error:#}"),
                stderr: store.data().last_stderr_line(),
            },
        }
    }
}

/// An instance ready for another call, with the store it lives in.
pub(crate) struct Warm<I> {
    store: Store<Sandbox>,
    instance: I,
}

/// Idle instances of one plugin. Scheduler workers call a plugin from
/// several threads; each call takes an instance, so none is shared. Every
/// instance made for the pool, idle or in a call, holds a share of the
/// plugin's memory budget; idle ones are dropped when a call needs room.
pub(crate) struct Pool<I> {
    idle: Mutex<Vec<Warm<I>>>,
    budget: Arc<MemoryBudget>,
}

/// Idle instances kept per plugin; more concurrent callers than this make
/// and drop extra instances.
const MAX_IDLE: usize = 8;

impl<I: Send + 'static> Pool<I> {
    /// An empty pool whose instances count against `budget`.
    pub(crate) fn new(budget: Arc<MemoryBudget>) -> Arc<Self> {
        let pool = Arc::new(Self {
            idle: Mutex::new(Vec::new()),
            budget,
        });
        let weak = Arc::downgrade(&pool);
        pool.budget.watch(weak);
        pool
    }

    /// Another empty pool of the same plugin, sharing its budget.
    pub(crate) fn sibling(&self) -> Arc<Self> {
        Self::new(Arc::clone(&self.budget))
    }
}

impl<I> Pool<I> {
    /// What all the plugin's instances hold now, in bytes.
    pub(crate) fn memory_held(&self) -> usize {
        self.budget.held()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm<I>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Option<Warm<I>> {
        self.lock().pop()
    }

    fn put(&self, warm: Warm<I>) {
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(warm);
        }
    }
}

impl<I: Send + 'static> Reclaim for Pool<I> {
    fn drop_idle(&self) -> bool {
        // Dropped after the lock is released: dropping a store gives its
        // memory back to the budget.
        let oldest = {
            let mut idle = self.lock();
            (!idle.is_empty()).then(|| idle.remove(0))
        };
        oldest.is_some()
    }
}

/// A linker with WASI 0.2, which the sandbox makes grant nothing, and whose
/// waits end at the call's deadline.
fn wasi_linker(engine: &Engine) -> Result<Linker<Sandbox>, PluginError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| PluginError::Runtime(format!("linking WASI: {e:#}")))?;
    crate::deadline::link_bounded_poll(&mut linker)
        .map_err(|e| PluginError::Runtime(format!("linking wasi:io/poll with deadlines: {e:#}")))?;
    Ok(linker)
}

/// Tells a component from a core module or anything else by the preamble:
/// `\0asm`, a 16-bit version, a 16-bit layer (0: core module, 1: component).
fn check_is_component(plugin: &str, digest: Digest, bytes: &[u8]) -> Result<(), PluginError> {
    let detail = match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => return Ok(()),
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => "it is a core wasm module",
        _ => "it does not start with the wasm magic bytes",
    };
    Err(PluginError::NotAComponent {
        plugin: plugin.to_owned(),
        digest,
        detail: detail.to_owned(),
    })
}

/// Advances the engine's epoch every `tick` for as long as the engine lives.
fn start_ticker(engine: &Engine, tick: Duration) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("orch-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .map(drop)
}
