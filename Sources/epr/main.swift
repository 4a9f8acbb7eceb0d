import CLI

await EPRCommand.runMain()
