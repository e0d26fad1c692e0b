package smtprelay

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxAddress is the longest address accepted: RFC 5321 limits a path to 256 octets including the angle brackets.
const maxAddress = 254

// envelope is a checked MAIL FROM and RCPT TO list.
type envelope struct {
	from string
	to   []string
	// utf8 is true when an address is not ASCII, which needs the relay's SMTPUTF8.
	utf8 bool
}

// newEnvelope checks the addresses a plugin gave. Anything that could end the command line or the path early
// (CR, LF, NUL and other control characters, '<', '>', a space outside a quoted local part) is refused with a
// 501 *Error, before any network activity.
func newEnvelope(from string, to []string) (envelope, error) {
	env := envelope{from: from, to: to}
	if from != "" {
		if err := checkAddress(from); err != nil {
			return envelope{}, replyError(501, fmt.Sprintf("5.1.7 invalid sender address %q: %s", from, err))
		}
	}
	if len(to) == 0 {
		return envelope{}, replyError(501, "5.5.4 no recipients")
	}
	for i, addr := range to {
		if err := checkAddress(addr); err != nil {
			return envelope{}, replyError(501, fmt.Sprintf("5.1.3 invalid recipient address %d %q: %s", i+1, addr, err))
		}
	}
	for _, addr := range append([]string{from}, to...) {
		for i := 0; i < len(addr); i++ {
			if addr[i] >= utf8.RuneSelf {
				env.utf8 = true
			}
		}
	}
	return env, nil
}

// checkAddress accepts local@domain where neither part is empty and nothing can break out of "<...>".
func checkAddress(addr string) error {
	switch {
	case addr == "":
		return fmt.Errorf("empty")
	case len(addr) > maxAddress:
		return fmt.Errorf("longer than %d bytes", maxAddress)
	case !utf8.ValidString(addr):
		return fmt.Errorf("not valid UTF-8")
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return fmt.Errorf("not of the form local@domain")
	}
	quoted := len(addr[:at]) >= 2 && addr[0] == '"' && addr[at-1] == '"'
	for i := 0; i < len(addr); i++ {
		switch b := addr[i]; {
		case b == '\r' || b == '\n':
			return fmt.Errorf("contains a line break")
		case b < 0x20 || b == 0x7f:
			return fmt.Errorf("contains a control character")
		case b == '<' || b == '>':
			return fmt.Errorf("contains '<' or '>'")
		case b == ' ' && !(quoted && i < at):
			return fmt.Errorf("contains a space")
		}
	}
	return nil
}

// message is the DATA payload as it goes on the wire.
type message struct {
	// wire is the data with every line ending CRLF, leading dots doubled, and the ".\r\n" terminator.
	wire []byte
	// size is the RFC 1870 size: the CRLF-normalised data, without the dot-stuffing and the terminator.
	size int64
	// eightBit is true when a byte has the high bit set (BODY=8BITMIME).
	eightBit bool
}

// encodeData normalises line ends (bare LF and bare CR become CRLF, so "\n.\n" cannot end the message early at a
// lenient receiver: SMTP smuggling), stuffs a dot before every line that starts with one, makes sure the data ends
// with CRLF and appends the ".\r\n" terminator.
func encodeData(data []byte) message {
	out := make([]byte, 0, len(data)+len(data)/32+8)
	var size int64
	eightBit := false
	bol := true
	for i := 0; i < len(data); i++ {
		b := data[i]
		switch {
		case b == '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			out = append(out, '\r', '\n')
			size += 2
			bol = true
			continue
		case b == '\n':
			out = append(out, '\r', '\n')
			size += 2
			bol = true
			continue
		case b == '.' && bol:
			out = append(out, '.')
		case b >= 0x80:
			eightBit = true
		}
		out = append(out, b)
		size++
		bol = false
	}
	if !bol {
		out = append(out, '\r', '\n')
		size += 2
	}
	out = append(out, '.', '\r', '\n')
	return message{wire: out, size: size, eightBit: eightBit}
}
