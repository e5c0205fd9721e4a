//! The shape of a job file: which keys each table takes and what type each
//! value has. It mirrors the serde attributes in `job.rs` and
//! `resources.rs`; the round-trip test in `jobspec/mod.rs` fails when the
//! two drift apart.

/// What a key's value must be.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Str,
    Bool,
    /// An integer that fits the field's Rust type. `hint` says what the
    /// number means, for when it does not fit.
    Int {
        min: i64,
        max: i64,
        hint: &'static str,
    },
    /// A duration string such as `"30s"`.
    Dur,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    StrList,
    /// A table of string values: `env`, `meta`.
    StrMap,
    /// A table of anything: a driver's `config`.
    AnyMap,
    Table(&'static Schema),
    /// An array of tables: `[[group]]`.
    Tables(&'static Schema),
    /// A field of [`crate::Job`] that the server sets; a file must not.
    ServerSet,
}

#[derive(Debug)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    /// `Some(hint)` when the field must be present; the hint says how.
    pub(super) required: Option<&'static str>,
}

#[derive(Debug)]
pub(super) struct Schema {
    pub(super) fields: &'static [Field],
}

impl Schema {
    pub(super) fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The names a user may write, for suggestions and "valid fields".
    pub(super) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields
            .iter()
            .filter(|f| !matches!(f.kind, Kind::ServerSet))
            .map(|f| f.name)
    }
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: None,
    }
}

const fn required(name: &'static str, kind: Kind, hint: &'static str) -> Field {
    Field {
        name,
        kind,
        required: Some(hint),
    }
}

const fn int(min: i64, max: i64, hint: &'static str) -> Kind {
    Kind::Int { min, max, hint }
}

const U32: i64 = u32::MAX as i64;

const OPERATORS: &[&str] = &[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "regexp",
    "version",
    "set_contains",
    "is_set",
    "is_not_set",
    "distinct_hosts",
];

pub(super) const JOB: Schema = Schema {
    fields: &[
        required("id", Kind::Str, "add id = \"...\" at the top of the file"),
        field("name", Kind::Str),
        field("type", Kind::Enum(&["service", "batch", "system"])),
        field(
            "priority",
            int(0, u8::MAX as i64, "use 1 to 100; higher runs first"),
        ),
        field("datacenters", Kind::StrList),
        field("meta", Kind::StrMap),
        field("constraint", Kind::Tables(&CONSTRAINT)),
        field("affinity", Kind::Tables(&AFFINITY)),
        field("spread", Kind::Tables(&SPREAD)),
        required(
            "group",
            Kind::Tables(&GROUP),
            "add a [[group]] table with at least one [[group.task]]",
        ),
        field("stop", Kind::ServerSet),
        field("version", Kind::ServerSet),
        field("create_index", Kind::ServerSet),
        field("modify_index", Kind::ServerSet),
        field("submit_time_ms", Kind::ServerSet),
    ],
};

const GROUP: Schema = Schema {
    fields: &[
        required("name", Kind::Str, "add name = \"...\" to the group"),
        field(
            "count",
            int(0, U32, "count is the number of allocations, 0 to 10000"),
        ),
        field("constraint", Kind::Tables(&CONSTRAINT)),
        field("affinity", Kind::Tables(&AFFINITY)),
        field("spread", Kind::Tables(&SPREAD)),
        field("restart", Kind::Table(&RESTART)),
        field("reschedule", Kind::Table(&RESCHEDULE)),
        field("meta", Kind::StrMap),
        required(
            "task",
            Kind::Tables(&TASK),
            "add a [[group.task]] table after the group's [[group]]",
        ),
    ],
};

const TASK: Schema = Schema {
    fields: &[
        required("name", Kind::Str, "add name = \"...\" to the task"),
        required(
            "driver",
            Kind::Str,
            "add the task driver that runs it, e.g. driver = \"exec\"",
        ),
        field("config", Kind::AnyMap),
        field("resources", Kind::Table(&RESOURCES)),
        field("env", Kind::StrMap),
        field("artifact", Kind::Tables(&ARTIFACT)),
        field("constraint", Kind::Tables(&CONSTRAINT)),
        field("affinity", Kind::Tables(&AFFINITY)),
        field("kill_timeout", Kind::Dur),
        field("meta", Kind::StrMap),
    ],
};

const RESOURCES: Schema = Schema {
    fields: &[
        field("cpu", int(0, U32, "cpu is in MHz, e.g. cpu = 500")),
        field(
            "memory",
            int(0, i64::MAX, "memory is in MiB, e.g. memory = 256"),
        ),
        field("disk", int(0, i64::MAX, "disk is in MiB, e.g. disk = 1024")),
    ],
};

const CONSTRAINT: Schema = Schema {
    fields: &[
        field("attribute", Kind::Str),
        field("operator", Kind::Enum(OPERATORS)),
        field("value", Kind::Str),
    ],
};

const AFFINITY: Schema = Schema {
    fields: &[
        required(
            "attribute",
            Kind::Str,
            "e.g. attribute = \"${node.datacenter}\"",
        ),
        field("operator", Kind::Enum(OPERATORS)),
        field("value", Kind::Str),
        field(
            "weight",
            int(i8::MIN as i64, i8::MAX as i64, "use -100 to 100, not 0"),
        ),
    ],
};

const SPREAD: Schema = Schema {
    fields: &[
        required(
            "attribute",
            Kind::Str,
            "e.g. attribute = \"${node.datacenter}\"",
        ),
        field("weight", int(0, u8::MAX as i64, "use 1 to 100")),
        field("target", Kind::Tables(&TARGET)),
    ],
};

const TARGET: Schema = Schema {
    fields: &[
        required(
            "value",
            Kind::Str,
            "name the attribute value, e.g. value = \"dc1\"",
        ),
        required(
            "percent",
            int(0, u8::MAX as i64, "percent is a share, 0 to 100"),
            "add percent = 0 to 100",
        ),
    ],
};

const RESTART: Schema = Schema {
    fields: &[
        field(
            "attempts",
            int(0, U32, "attempts is a number of restarts, e.g. 3"),
        ),
        field("interval", Kind::Dur),
        field("delay", Kind::Dur),
        field("mode", Kind::Enum(&["fail", "delay"])),
    ],
};

const RESCHEDULE: Schema = Schema {
    fields: &[
        field(
            "attempts",
            int(0, U32, "attempts is a number of replacements, e.g. 3"),
        ),
        field("interval", Kind::Dur),
        field("delay", Kind::Dur),
        field("max_delay", Kind::Dur),
        field("unlimited", Kind::Bool),
    ],
};

const ARTIFACT: Schema = Schema {
    fields: &[
        required(
            "source",
            Kind::Str,
            "add source = \"https://...\" with the URL to fetch",
        ),
        field("destination", Kind::Str),
        field("sha256", Kind::Str),
        field("executable", Kind::Bool),
    ],
};
