package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
)

// logBridge turns memberlist's log.Logger lines ("[WARN] memberlist:
// ...") into slog records at the matching level. It also reads the one
// line that tells of this member's own suspicion of another, which
// memberlist exposes no other way.
type logBridge struct{ p *Pool }

const suspectPrefix = "Suspect "
const suspectSuffix = " has failed, no acks received"

func (b *logBridge) Write(line []byte) (int, error) {
	n := len(line)
	s := string(bytes.TrimRight(line, "\n"))
	level := slog.LevelInfo
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]"); i > 0 {
			switch s[1:i] {
			case "DEBUG":
				level = slog.LevelDebug
			case "WARN":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			s = strings.TrimSpace(s[i+1:])
		}
	}
	s = strings.TrimPrefix(s, "memberlist: ")
	if strings.HasPrefix(s, suspectPrefix) && strings.HasSuffix(s, suspectSuffix) {
		b.p.view.suspected(strings.TrimSuffix(strings.TrimPrefix(s, suspectPrefix), suspectSuffix))
	}
	b.p.logger.Log(context.Background(), level, s, "member", b.p.cfg.Name)
	return n, nil
}
