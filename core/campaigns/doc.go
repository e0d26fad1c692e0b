// Package campaigns owns campaigns and their delivery: what a campaign says on each channel (Liquid templates), to
// whom (segments and static lists, minus exclusions), when (now, at a time, on a cron schedule), and the durable
// outbox that sends each message exactly once across crashes.
//
// A campaign run plans one outbox message per contact and channel slot under a deterministic key (campaign, run,
// contact, slot), so planning again after a crash adds nothing twice. The engine claims due messages in batches
// (marking them sending, with a lease), renders them, hands them to the channel plugin with the message's key as
// the idempotency key, and records each outcome. A message left "sending" by a crash is sent again with the same
// key: channels pass it to their provider, which drops the repeat. See docs/campaigns.md.
//
// It imports the standard library, go-hclog, robfig/cron's parser (through core/scheduler), the Liquid engine,
// and core packages; never HTTP or wasm libraries: channels are reached through the Channels interface, which
// plugins/ implements.
package campaigns
