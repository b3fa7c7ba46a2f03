def test_user_errors_cross_a_process_boundary_whole():
    # a sweep's worker raises them and the parent re-raises them: pickling must keep every field
    import pickle

    from gpuinfra.errors import UserError, UserErrors

    one = UserError("max_nodes 7 is above the pool's count 6", where="s.yaml:12", expected="<= 6", fix="lower it")
    many = UserErrors([one, UserError("bad", where="s.yaml:13")], where="s.yaml", fix="see the docs", shown=5)
    for e in (one, many):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e) and back.where == e.where and back.fix == e.fix
    assert [p.what for p in pickle.loads(pickle.dumps(many)).problems] == [p.what for p in many.problems]
