
from xval import Experiment

experiment = Experiment(description="legacy fixture", dataset="tiny", number=1, num_folds=3)
experiment[1] = {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "cnn", "comment_2": "a"}
experiment[2] = {"architecture": "mlp", "reshaping_type": "none", "comment_1": "mlp", "comment_2": "b", "hidden_units": 16}
if __name__ == "__main__":
    experiment.main()
