// Package segments owns audiences: saved segments, their membership, and the evaluation of rules (written in the
// language of core/segments/rule) against a workspace's contacts and events.
//
// This first part evaluates a rule by scanning the stored contacts with the reference evaluator (Preview): exact,
// and the semantics the in-memory index (next part of issue 5) must match, but linear in the contacts and their
// events. It imports the standard library, core/errs, core/contacts, core/events and core/segments/rule.
package segments
