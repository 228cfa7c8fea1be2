"""Tools to package and run the model on TorchServe: configs, start/stop, versions, predict, smoke, bench."""
