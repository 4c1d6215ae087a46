package load

import (
	"fmt"
	"strconv"
)

// Users is a population of client identities. User i (from 1) is "user-i",
// carried in a header and a cookie, and comes from its own X-Forwarded-For
// address 10.0.0.0 + i: a private address used as a header value only, so
// per-user rate limits and blast radius behave as with real clients while the
// traffic itself goes only to the target.
type Users struct {
	N      int
	Header string // e.g. X-User-ID; empty sends none
	Cookie string // cookie name, e.g. slolab_user; empty sends none
}

// MaxUsers is how many distinct addresses 10.0.0.0/8 holds without its
// network and broadcast addresses.
const MaxUsers = 1<<24 - 2

func (u Users) check() error {
	if u.N < 1 || u.N > MaxUsers {
		return fmt.Errorf("users: want 1 to %d, got %d", MaxUsers, u.N)
	}
	return nil
}

// appendID writes user i's identity ("user-42").
func appendID(b []byte, i uint64) []byte {
	b = append(b, "user-"...)
	return strconv.AppendUint(b, i, 10)
}

// appendAddr writes user i's X-Forwarded-For address.
func appendAddr(b []byte, i uint64) []byte {
	b = append(b, "10."...)
	b = strconv.AppendUint(b, i>>16&0xff, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, i>>8&0xff, 10)
	b = append(b, '.')
	return strconv.AppendUint(b, i&0xff, 10)
}
