import CLI

// Before the first `await`: the process has one thread here.
EPRCommand.prepareProcess()
await EPRCommand.runMain()
