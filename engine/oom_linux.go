package engine

import (
	"log/slog"
	"os"
)

// engineOOMScoreAdj makes the kernel's OOM killer take slaves (which
// raise theirs, see sandbox.SlaveOOMScoreAdj) long before the engine.
const engineOOMScoreAdj = "-900"

// protectFromOOM lowers the engine's OOM score; only root may, so
// elsewhere the slaves' raised score alone orders them.
func protectFromOOM(log *slog.Logger) {
	if os.Geteuid() != 0 {
		return
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(engineOOMScoreAdj), 0); err != nil {
		// Containers often drop CAP_SYS_RESOURCE; the slaves' raised
		// score still makes the OOM killer take them first.
		log.Info("engine OOM score left as is", "err", err)
	}
}
