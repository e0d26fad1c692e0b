// Package segments owns audiences: saved segments (rules and static lists), their live membership, the
// transitions of contacts entering and leaving them, and the evaluation of rules (written in the language of
// core/segments/rule) against a workspace's contacts and events.
//
// Membership lives in one in-memory index per workspace (core/segments/index), built from the store at start and
// kept in step by the contacts change stream: a count read right after a write already reflects it. Transitions
// are published to listeners (campaign triggers) as they happen and recorded in the store in the background; at
// start, the rebuilt index is compared with what was recorded, so nothing is lost across a crash. Recheck, run by
// the scheduler, handles conditions that change with time alone.
//
// It imports the standard library, go-hclog, core/errs, core/contacts, core/events and core/segments/{rule,index}.
// Storage is reached through Store (core/store implements it).
package segments
