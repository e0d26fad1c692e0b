package capability

import "fmt"

func errMalformed(capability string, err error) error {
	return fmt.Errorf("malformed %s request: %w", capability, err)
}
