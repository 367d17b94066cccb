import catembed


def test_public_api_is_exactly_what_is_exported() -> None:
    assert catembed.__all__ == sorted(catembed.__all__)
    assert set(catembed.__all__) == {
        "CatembedError",
        "DatasetConfig",
        "TrainingConfig",
        "TrainingResult",
        "TripletDataset",
        "Validator",
        "ValueReport",
        "Verdict",
        "__version__",
        "build_triplets",
        "train",
    }
    for name in catembed.__all__:
        assert hasattr(catembed, name)
