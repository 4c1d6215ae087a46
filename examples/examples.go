// Package examples embeds the example specs, so `slolab lab` runs on a fresh
// clone with no file to find: the chat service is the lab's default.
package examples

import _ "embed"

// ChatPath is the chat spec's path in the repository, used in error positions.
const ChatPath = "examples/chat.yaml"

// Chat is examples/chat.yaml: the demo app's service and its CUJs.
//
//go:embed chat.yaml
var Chat []byte
