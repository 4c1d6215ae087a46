//go:build !unix

package load

// alive cannot peek at a socket here: an idle connection the server closed
// shows when a request fails on it, and replayable requests are sent again.
func (c *h1Conn) alive() bool { return c.r.Buffered() == 0 }
