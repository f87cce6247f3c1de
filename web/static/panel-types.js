// @ts-check
// The shapes the medication panel's modules pass around (docs/protocol.md, "Medication
// panel"), for the JSDoc type checks (`tsc --noEmit`, web/tsconfig.json). Types only: no
// module imports this file at run time.

/**
 * @typedef {object} Actor  who made a change, as events and entities name them
 * @property {string} [id]
 * @property {string} [name]
 * @property {string} [role]
 */

/**
 * @typedef {object} Entity  a medication, problem, recommendation or plan item
 * @property {string} id
 * @property {string} type
 * @property {string} [position]
 * @property {Record<string, any>} [data]
 * @property {Record<string, number>} [versions]   per field: the seq that last changed it
 * @property {number} [created_seq]
 * @property {number} [updated_seq]
 * @property {Actor | null} [updated_by]
 */

/**
 * @typedef {object} PanelEvent  one entry of the panel's event log
 * @property {number} seq
 * @property {string} op   set, add, move, derived, or (for a patient) hidden / remove
 * @property {string} [outcome]   applied or conflict
 * @property {string} [entity_type]
 * @property {string} [entity_id]
 * @property {string | null} [field]
 * @property {any} [new]
 * @property {any} [old]
 * @property {Actor} [actor]
 * @property {string} [mutation_id]
 * @property {string} [at]
 * @property {Record<string, any>} [detail]
 */

/** @typedef {{event: PanelEvent, entity?: Entity | null}} EventPayload  a `panel-event` */

/** @typedef {{seq: number, entities: Entity[]}} PanelSnapshot */

/**
 * @typedef {object} Mutation  what `mutate` sends
 * @property {string} mutation_id
 * @property {string} op
 * @property {string} entity   the entity type
 * @property {string} [entity_id]
 * @property {string} [field]
 * @property {any} [value]
 * @property {number} [base_version]
 * @property {boolean} [override]
 * @property {string} [source]
 * @property {string | null} [after]
 */

/** @typedef {{mutation: Mutation, label: string, rebase?: boolean}} QueueItem */

/**
 * @typedef {object} MutationResult  the acknowledgement of `mutate`
 * @property {boolean} ok
 * @property {number} [seq]
 * @property {PanelEvent} [event]
 * @property {Entity | null} [entity]
 * @property {EventPayload[]} [effects]
 * @property {{code?: string, message?: string}} [error]
 * @property {{entity?: Entity, value?: any, version?: number}} [current]
 */

/**
 * @typedef {object} FieldSpec  the server's description of one field (`FieldSpec.describe()`)
 * @property {string} [label]
 * @property {string} [kind]
 * @property {string[] | null} [choices]
 * @property {number | null} [max_length]
 * @property {boolean} [required]
 * @property {any} [default]
 * @property {boolean} [compare_and_set]
 * @property {string} [action]
 * @property {string[]} [keys]   a mapping field's allowed keys (a recommendation's `proposed`)
 */

/**
 * @typedef {object} TypeSchema  the rules of one entity type
 * @property {Record<string, FieldSpec>} fields
 * @property {Record<string, Record<string, string[]>>} [transitions]
 * @property {string} [create_action]
 * @property {{statuses: string[]}} [to_decide]
 * @property {{statuses: string[], confirmations: (string | null)[]}} [to_confirm]
 */

/** @typedef {Record<string, TypeSchema>} PanelSchema  `settings.panel_schema` */

/** @typedef {Record<string, boolean>} May  `settings.may`: Action value → allowed */

/** @typedef {{panel_schema: PanelSchema, may: May}} Settings  the join ack's `settings` */

/**
 * @typedef {object} PanelSocket  what the store uses of a socket.io-client Socket
 * @property {boolean} connected
 * @property {(event: string, handler: (...args: any[]) => void) => unknown} on
 * @property {(event: string, handler: (...args: any[]) => void) => unknown} off
 * @property {(ms: number) => {emitWithAck: (event: string, ...args: any[]) => Promise<any>}} timeout
 */

/** @typedef {{id: string, role: string, display_name?: string}} Self  the join ack's `self` */

export {};
