// Package rule owns the segment rule language: the text marketers write and its JSON form, the syntax tree both
// read into (Node), the canonical formatter (Format), the checker (Check, against a Schema of attribute kinds;
// Compile parses and checks), what a rule depends on (Dependencies, Segments) and the reference evaluator (Eval,
// NextChange), which defines the semantics that any faster index must match.
//
// It is pure: no I/O, no clock, no state. It imports only the standard library and core/contacts (for
// contacts.Value, contacts.Kind and contacts.ConsentStatus, and the tag and channel name rules). Storing segments,
// resolving in_segment references and indexing contacts belong to core/segments.
//
// # Example
//
//	country = "FR" and score("engagement") > 50
//	  and performed("Order Completed", within: 30d, count >= 2, where: total > 100)
//	  and not in_segment("churned") and subscribed("email")
//
// # Grammar
//
//	rule       = or
//	or         = and { "or" and }
//	and        = unary { "and" unary }
//	unary      = "not" unary | primary
//	primary    = "(" or ")" | comparison | function
//	comparison = field ( cmp value | ["not"] "in" list | ["not"] ("contains" | "starts_with") text
//	                   | ["not"] "exists" | ("within" | "older_than") duration )
//	cmp        = "=" | "!=" | "<" | "<=" | ">" | ">="
//	value      = text | number | "true" | "false"
//	list       = "[" (text | number) { "," (text | number) } [","] "]"
//	function   = "has_tag" "(" text ")" | "subscribed" "(" text ")" | "unsubscribed" "(" text ")"
//	           | "in_segment" "(" text ")" | "score" "(" text ")" cmp number
//	           | "performed" "(" text { "," ( "within" ":" duration | "count" cmp integer | "where" ":" or ) } ")"
//	           | "bucket" "(" percent [ ".." percent ] [ "," "seed" ":" text ] ")"
//
// Precedence is not, then and, then or; and and or are n-ary, and parentheses are kept in the tree (a and (b and c)
// is an And holding an And). Keywords, function and argument names are case-insensitive; names of fields are not.
// The keywords and, or, not, in, contains, starts_with, exists, within, older_than, true and false cannot be bare
// field names; function names can (score > 5 compares an attribute named score).
//
// Lexemes: text is double-quoted with the escapes \" \` \\ \n \r \t \uXXXX \UXXXXXXXX (a raw tab is allowed, a raw
// line break is not); numbers are decimal (-3, 12.5, 1e6); durations are a whole number and a unit, m (minutes),
// h (hours), d (days of 24 hours) or w (weeks): 90m, 36h, 30d, 2w; percentages are a number and % (10%, 12.5%).
// Spaces and line breaks separate tokens anywhere.
//
// # Fields
//
// A bare name is letters, digits and _, not starting with a digit, in parts joined by dots (address.city). The
// built-ins are email, phone, user_id, timezone, locale and lifecycle (text) and created_at and last_seen_at
// (dates). Any other bare name is an attribute. A name in backquotes is always an attribute, verbatim (`first
// name`, `email`), with the escapes of text. A bare name starting with "attributes." names the attribute after the
// prefix, so attributes.email is the attribute named email, not the built-in, and attributes.attributes.x the
// attribute named attributes.x. Format writes an attribute bare when that reads back as itself, with the
// attributes. prefix when its name is a built-in's or starts with "attributes.", and in backquotes otherwise.
// Inside performed(..., where: ...), names are paths into the event's properties (total, product.price) and
// functions are not allowed.
//
// # Values and kinds
//
// Text compared with a date (created_at, a date attribute) is a date: "2024-01-31", the whole UTC day, or RFC 3339,
// an instant. = and in are exact; contains and starts_with ignore case; contains on a list tests membership. The
// ordering operators take numbers and dates only. within 7d means "in the last 7 days, up to now"; older_than 30d
// "more than 30 days ago". See Eval for the complete semantics, missing values included, and Check for what is
// refused.
//
// # Functions
//
//	has_tag("vip")                  the contact carries the tag
//	subscribed("email")             consent on the channel is subscribed (unsubscribed(...): unsubscribed)
//	score("engagement") > 50        a score, compared like a number field
//	in_segment("churned")           member of another segment, by name or id
//	performed("Order Completed")    at least once, any time
//	performed("X", within: 30d, count >= 2, where: total > 100 and currency = "EUR")
//	bucket(10%)                     a stable 10% of contacts (BucketOf); bucket(10%..30%) another 20%
//	bucket(10%, seed: "holdout-1")  seeds make independent splits; the same seed, the same split
//
// Each named argument of performed is optional and given at most once; the canonical order is within, count,
// where.
//
// # JSON form
//
// The API also takes rules as JSON, one object per condition with one key saying what it is:
//
//	{"and": [c, c, ...]}   {"or": [c, c, ...]}   (at least two)
//	{"not": c}
//	{"field": "country", "op": "=", "value": "FR"}
//	{"field": "country", "op": "in", "value": ["FR", "DE"]}
//	{"field": "phone", "op": "exists"}                       (exists and "not exists" take no value)
//	{"field": "created_at", "op": "within", "value": "7d"}
//	{"score": "engagement", "op": ">", "value": 50}
//	{"has_tag": "vip"}   {"subscribed": "email"}   {"unsubscribed": "sms"}   {"in_segment": "churned"}
//	{"bucket": {"from": 0, "to": 10, "seed": "holdout-1"}}  ("from" and "seed" optional)
//	{"performed": {"event": "Order Completed", "within": "30d", "count": {"op": ">=", "value": 2},
//	               "where": {"field": "total", "op": ">", "value": 100}}}   (all but "event" optional)
//
// "field" holds the reference as text writes it, without backquotes: "country", "first name",
// "attributes.email"; inside "where" it is a property path. "op" is one of = != < <= > >= in "not in" contains
// "not contains" starts_with "not starts_with" exists "not exists" within older_than. Decoding is strict: an
// unknown or repeated key, a missing one, a wrong type or data after the rule is an error with its JSON path.
// Every rule DecodeJSON accepts has a text form Parse accepts, and back.
//
// # Errors and limits
//
// Parse, DecodeJSON and Check return Errors: each Error has a line and column (in characters, 1-based) or a JSON
// path, and a message for the marketer ("expected a value after '=' but the rule ends here", "unknown function
// 'performd': did you mean 'performed'?"). Independent mistakes are reported together, up to ten. A rule's text is
// at most MaxRuleBytes, its JSON at most MaxJSONBytes, and it nests at most MaxDepth levels.
package rule
