from learningcity.migrations.envcommon import run

run()
