package multiads

// ForgetTexts empties the in-process memo of encoded ensembles, so that a
// benchmark's runs start as separate `dapobench run` processes do.
func ForgetTexts() {
	texts.Lock()
	texts.m = nil
	texts.Unlock()
}
