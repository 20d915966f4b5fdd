// Package gossip is barge's member of the hashicorp/memberlist pool that
// servers and agents share: encrypted membership, failure detection
// (SWIM with Lifeguard) and node metadata for the overlay.
package gossip
