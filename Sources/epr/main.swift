import CLI

EPRCommand.runMain()
